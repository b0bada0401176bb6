"""What several test modules use: the CLI as a user runs it, generated datasets, paths."""

import os
import subprocess
import sys

from shopbusy.data import generator

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Files the tests leave for people to look at (screenshots of the report).
ARTIFACTS_DIR = os.path.join(REPO_ROOT, "test-artifacts")
SHOPBUSY = [sys.executable, "-m", "shopbusy.cli"]


def run_cli(*args, timeout=1200, **kwargs) -> subprocess.CompletedProcess:
    """Runs `shopbusy ARGS` as a user would, in a fresh process."""
    return subprocess.run([*SHOPBUSY, *map(str, args)], capture_output=True, text=True, timeout=timeout, **kwargs)


def write_dataset(path, rows, seed, transform=None) -> str:
    """Writes a generated CSV, optionally changing its columns first (transform(columns))."""
    dataset = generator.generate(rows=rows, seed=seed)
    if transform:
        transform(dataset.columns)
    path.parent.mkdir(parents=True, exist_ok=True)
    generator.write_csv(dataset, str(path))
    return str(path)
