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


# The modules that run pipelines, slowest first (`make test` hands whole modules to its two
# workers in collection order, --dist loadfile --no-loadscope-reorder): the two longest start
# at once, on different workers, and the short modules fill in behind them.
SLOWEST_MODULES = ["test_continuous_training.py", "test_packaging.py", "test_pipeline_e2e.py"]


def pytest_collection_modifyitems(items):
    def rank(item):
        name = item.path.name
        return SLOWEST_MODULES.index(name) if name in SLOWEST_MODULES else len(SLOWEST_MODULES)

    items.sort(key=rank)  # stable: the order within a module, and of the other modules, stays

