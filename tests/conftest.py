"""Shared fixtures. Keras 2 is settled here, as at every entry point, before TF loads.
Helpers shared by test modules are in tests/helpers.py."""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from tests.helpers import write_dataset  # noqa: E402


@pytest.fixture
def small_csv(tmp_path):
    return write_dataset(tmp_path / "data" / "shops.csv", rows=300, seed=5)
