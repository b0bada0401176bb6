"""The whole pipeline through LocalDagRunner and the CLI, on one workdir across four runs:
blessed and pushed; re-run from cache; bad data rejected; a useless model not pushed.

The runs share a workdir on purpose: the later ones need the earlier ones' baseline,
cache and served model, as a user's successive runs do.
"""

import hashlib
import os

import numpy as np
import pytest
import tensorflow as tf

from components.modules.features import CSV_COLUMNS, LABEL_KEY
from pipeline import config, metadata
from tests.conftest import run_cli, write_dataset

ROWS, EPOCHS = 1000, 15
# The gates' mechanics on 600 training rows and 15 epochs: a real model clears these,
# a model trained on shuffled labels (accuracy about 0.5) does not.
GATE_ARGS = ["--min-accuracy", "0.65", "--max-fpr", "0.4", "--max-fnr", "0.4", "--max-accuracy-drop", "0.05"]
UPSTREAM = ["CsvExampleGen", "StatisticsGen", "ExampleValidator", "AnomalyGate", "Transform", "Trainer"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e") / "workdir"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("inputs")


def _run(data, workdir):
    return run_cli("run", "--data", data, "--workdir", workdir, "--epochs", EPOCHS, *GATE_ARGS)


def _latest_run(workdir):
    store = metadata.open_store(config.Workdir(str(workdir)).metadata_path)
    return {e.node: e for e in metadata.run_executions(store, metadata.latest_run_id(store))}


def _tree_digest(root):
    """Content hash of a folder, to prove it did not change."""
    digest = hashlib.sha256()
    for folder, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            path = os.path.join(folder, name)
            digest.update(path.encode())
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


def _examples(csv_path, with_label):
    """The CSV's rows as serialized tf.Examples, as a client would send them."""
    data = np.loadtxt(csv_path, delimiter=",", skiprows=1, dtype=np.int64)
    columns = [c for c in CSV_COLUMNS if with_label or c != LABEL_KEY]
    examples = []
    for row in data:
        feature = {
            c: tf.train.Feature(int64_list=tf.train.Int64List(value=[row[CSV_COLUMNS.index(c)]])) for c in columns
        }
        examples.append(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return data[:, CSV_COLUMNS.index(LABEL_KEY)], tf.constant(examples)


class TestLocalPipeline:
    def test_first_run_is_blessed_and_pushes_a_model_that_serves_raw_examples(self, workdir, data_dir):
        data = write_dataset(data_dir / "good" / "shops.csv", rows=ROWS, seed=21)
        result = _run(data, workdir)
        assert result.returncode == 0, result.stdout + result.stderr
        for component in UPSTREAM + ["Evaluator", "Pusher"]:
            assert f"{component} finished" in result.stdout

        executions = _latest_run(workdir)
        assert {e.state for e in executions.values()} == {"COMPLETE"}
        blessing = executions["Evaluator"].outputs["blessing"][0]
        assert metadata.custom_property(blessing, "blessed") == 1
        pushed = executions["Pusher"].outputs["pushed_model"][0]
        assert metadata.custom_property(pushed, "pushed") == 1
        destination = metadata.custom_property(pushed, "pushed_destination")
        assert os.path.dirname(destination) == str(workdir / "serving")
        assert f"Blessed and pushed: {destination}" in result.stdout
        assert "accuracy" in result.stdout and "pass" in result.stdout

        served = tf.saved_model.load(destination)
        assert set(served.signatures) == {"serving_default", "transform_features"}
        labels, examples = _examples(data, with_label=False)
        probabilities = served.signatures["serving_default"](examples=examples)["outputs"].numpy()[:, 0]
        assert ((probabilities >= 0) & (probabilities <= 1)).all()
        assert np.mean((probabilities > 0.5) == labels) > 0.7

    def test_second_run_reuses_the_cached_upstream_components(self, workdir, data_dir):
        result = _run(str(data_dir / "good" / "shops.csv"), workdir)
        assert result.returncode == 0, result.stdout + result.stderr
        executions = _latest_run(workdir)
        for component in UPSTREAM:
            assert executions[component].state == "CACHED", component
        # The first run's model is now the baseline: the change gate is checked.
        assert "accuracy change vs baseline" in result.stdout

    def test_bad_data_exits_2_trains_nothing_and_keeps_the_served_model(self, workdir, data_dir):
        served_before = _tree_digest(workdir / "serving")

        def bad_ratings(columns):
            columns["avgRating"][::50] = 9

        data = write_dataset(data_dir / "bad" / "shops.csv", rows=ROWS, seed=22, transform=bad_ratings)
        result = _run(data, workdir)
        assert result.returncode == 2, result.stdout + result.stderr
        assert data in result.stderr and "column 'avgRating'" in result.stderr
        assert "Traceback" not in result.stderr
        executions = _latest_run(workdir)
        assert executions["AnomalyGate"].state == "FAILED"
        assert "Transform" not in executions and "Trainer" not in executions and "Pusher" not in executions
        assert _tree_digest(workdir / "serving") == served_before

    def test_shuffled_labels_exit_3_and_push_nothing(self, workdir, data_dir):
        served_before = _tree_digest(workdir / "serving")

        def shuffle_labels(columns):
            np.random.default_rng(0).shuffle(columns[LABEL_KEY])

        data = write_dataset(data_dir / "shuffled" / "shops.csv", rows=ROWS, seed=23, transform=shuffle_labels)
        result = _run(data, workdir)
        assert result.returncode == 3, result.stdout + result.stderr
        assert "FAIL" in result.stdout and "Not blessed" in result.stdout
        executions = _latest_run(workdir)
        assert metadata.custom_property(executions["Evaluator"].outputs["blessing"][0], "blessed") == 0
        assert "Pusher" not in executions or executions["Pusher"].state != "COMPLETE"
        assert _tree_digest(workdir / "serving") == served_before
