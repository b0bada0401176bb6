"""Shared fixtures. Keras 2 is settled here, as at every entry point, before TF loads."""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

from data import generator  # noqa: E402
from pipeline import config  # noqa: E402

# Files the tests leave for people to look at (screenshots of the report).
ARTIFACTS_DIR = os.path.join(config.PROJECT_ROOT, "test-artifacts")


def run_cli(*args, timeout=1200) -> subprocess.CompletedProcess:
    """Runs `shopbusy ARGS` as a user would, in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_dataset(path, rows, seed, transform=None) -> str:
    """Writes a generated CSV, optionally changing its columns first (transform(columns))."""
    dataset = generator.generate(rows=rows, seed=seed)
    if transform:
        transform(dataset.columns)
    path.parent.mkdir(parents=True, exist_ok=True)
    generator.write_csv(dataset, str(path))
    return str(path)


@pytest.fixture
def small_csv(tmp_path):
    return write_dataset(tmp_path / "data" / "shops.csv", rows=300, seed=5)
