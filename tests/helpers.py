"""What several test modules use: the CLI as a user runs it, generated datasets, paths."""

import copy
import os
import shutil
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


def render_in_browser(page, name):
    """Renders the page in headless Chromium; returns the console lines and the screenshot path."""
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: `make test` installs it (scripts/install-test-deps.sh)"
    os.makedirs(ARTIFACTS_DIR, exist_ok=True)
    screenshot = os.path.join(ARTIFACTS_DIR, f"{name}.png")
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [
                chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--window-size=1280,3000",
                f"--screenshot={screenshot}", f"file://{page}",
            ],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [line for line in result.stderr.splitlines() if "CONSOLE" in line], screenshot


def with_tfmas_own_classes(proto):
    """A copy of an eval config with TFMA's own metric classes where the pipeline's are
    (components/evaluator_metrics.py: the same metrics, read and counted faster)."""
    import tensorflow_model_analysis as tfma  # here: most users of these helpers never load TFMA

    from shopbusy.pipeline import config

    proto = copy.deepcopy(proto)
    for metric in proto.metrics_specs[0].metrics:
        if metric.module == config.EVALUATOR_METRICS:
            metric.class_name, metric.module = metric.class_name.removeprefix("ArrayHistogram").removeprefix("Direct"), ""
            assert hasattr(tfma.metrics, metric.class_name), metric
    return proto
