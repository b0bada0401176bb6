"""What several test modules use: the CLI as a user runs it, generated datasets, paths."""

import os
import subprocess
import sys
import tempfile

from shopbusy.data import generator
from shopbusy.kubeflow import pods

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Files the tests leave for people to look at (screenshots of the report).
ARTIFACTS_DIR = os.path.join(REPO_ROOT, "test-artifacts")
SHOPBUSY = [sys.executable, "-m", "shopbusy.cli"]


# What `shopbusy` commands import before they do anything else: TensorFlow, TFX and its
# executors, Beam, kfp. The CLI runs in a process of its own forked from an interpreter that
# imported these once (shopbusy/kubeflow/pods.py), rather than spending its first ~40 s here on
# the import; test_packaging starts the installed console script in a fresh interpreter.
CLI_PRELOAD = [
    "shopbusy.cli",
    "shopbusy.pipeline.local_runner",
    "shopbusy.kubeflow.runner",
    "shopbusy.kubeflow.local_launcher",
    "shopbusy.results.report",
    "shopbusy.serving",
    "tfx.components.evaluator.executor",
    "tfx.components.trainer.executor",
    "tfx.components.transform.executor",
    "tfx.components.statistics_gen.executor",
    "tfx.components.example_validator.executor",
]


def run_cli(*args, timeout=1200, cwd=None, env=None) -> subprocess.CompletedProcess:
    """Runs `shopbusy ARGS` as a user would, in a process of its own: its exit code, stdout and
    stderr; subprocess.TimeoutExpired after `timeout` seconds."""
    args = [str(a) for a in args]
    pods.preload(CLI_PRELOAD)
    with tempfile.TemporaryDirectory() as captured:
        stdout, stderr = os.path.join(captured, "stdout"), os.path.join(captured, "stderr")
        code = pods.run_module(
            "shopbusy.cli", args, str(cwd or os.getcwd()), dict(env or os.environ), stdout, stderr, timeout
        )
        with open(stdout) as out, open(stderr) as err:
            return subprocess.CompletedProcess([*SHOPBUSY, *args], code, out.read(), err.read())


def write_dataset(path, rows, seed, transform=None) -> str:
    """Writes a generated CSV, optionally changing its columns first (transform(columns))."""
    dataset = generator.generate(rows=rows, seed=seed)
    if transform:
        transform(dataset.columns)
    path.parent.mkdir(parents=True, exist_ok=True)
    generator.write_csv(dataset, str(path))
    return str(path)
