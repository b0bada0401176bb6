"""The whole pipeline through LocalDagRunner and the CLI, on one workdir across five runs:
blessed and pushed; unchanged (answered at once); forced re-run from cache; bad data
rejected; a useless model not pushed.

The runs share a workdir on purpose: the later ones need the earlier ones' baseline,
cache and served model, as a user's successive runs do. Each run is a module fixture that
asks for the one before it and records what it did when it finished, so every test gets
the run it asserts on whichever tests run, in whatever order.
"""

import collections
import dataclasses
import glob
import hashlib
import json
import os
import re
import subprocess
from typing import Dict

import numpy as np
import pytest
import tensorflow as tf

import nbclient
import nbformat

from shopbusy.components.modules import features, model
from shopbusy.components.modules.features import CSV_COLUMNS, LABEL_KEY
from shopbusy.pipeline import config
from shopbusy.results import evaluation, metadata, runs
from tests.helpers import REPO_ROOT, render_in_browser, run_cli, write_dataset

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


def _run(data, workdir, *args):
    return run_cli("run", "--data", data, "--workdir", workdir, "--epochs", EPOCHS, *GATE_ARGS, *args)


@dataclasses.dataclass
class Run:
    """One `shopbusy run` and what the workdir held right after it."""

    result: subprocess.CompletedProcess
    run_ids: list  # every run in the workdir, newest first
    executions: Dict[str, metadata.ComponentExecution]  # of the newest run
    served: str  # content digest of serving/ after the run
    served_before: str  # and before it


def _run_and_record(data, workdir, *args) -> Run:
    served_before = _tree_digest(workdir / "serving")
    result = _run(data, workdir, *args)
    store = metadata.open_store(config.Workdir(str(workdir)).metadata_path)
    run_ids = metadata.run_ids(store)
    executions = {e.node: e for e in metadata.run_executions(store, run_ids[0])}
    return Run(result, run_ids, executions, _tree_digest(workdir / "serving"), served_before)


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


def _report_path(result):
    """Where `shopbusy run` said the run's own report page is."""
    match = re.search(r"Slice report: (\S+)", result.stdout)
    assert match, result.stdout
    return match.group(1)


def _report(workdir, result):
    """The run's own report page."""
    assert os.path.exists(workdir / "report" / "latest.html")
    with open(_report_path(result)) as f:
        return f.read()


def _report_data(result):
    """The numbers beside the run's report page (report.json)."""
    with open(os.path.join(os.path.dirname(_report_path(result)), "report.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def good_data(data_dir):
    return write_dataset(data_dir / "good" / "shops.csv", rows=ROWS, seed=21)


@pytest.fixture(scope="module")
def bad_data(data_dir):
    def bad_ratings(columns):
        columns["avgRating"][::50] = 9

    return write_dataset(data_dir / "bad" / "shops.csv", rows=ROWS, seed=22, transform=bad_ratings)


@pytest.fixture(scope="module")
def first_run(workdir, good_data) -> Run:
    return _run_and_record(good_data, workdir)


@pytest.fixture(scope="module")
def unchanged_run(workdir, good_data, first_run) -> Run:
    return _run_and_record(good_data, workdir)


@pytest.fixture(scope="module")
def forced_run(workdir, good_data, unchanged_run) -> Run:
    return _run_and_record(good_data, workdir, "--force", "--intervals")  # the same run, with TFMA's intervals


@pytest.fixture(scope="module")
def bad_data_run(workdir, bad_data, forced_run) -> Run:
    return _run_and_record(bad_data, workdir)


@pytest.fixture(scope="module")
def one_class_run(workdir, data_dir, bad_data_run) -> Run:
    def no_busy_shop(columns):
        columns[LABEL_KEY][:] = 0

    data = write_dataset(data_dir / "one-class" / "shops.csv", rows=ROWS, seed=24, transform=no_busy_shop)
    return _run_and_record(data, workdir)


@pytest.fixture(scope="module")
def shuffled_labels_run(workdir, data_dir, one_class_run) -> Run:
    def shuffle_labels(columns):
        np.random.default_rng(0).shuffle(columns[LABEL_KEY])

    data = write_dataset(data_dir / "shuffled" / "shops.csv", rows=ROWS, seed=23, transform=shuffle_labels)
    return _run_and_record(data, workdir)


@pytest.fixture(scope="module")
def undertrained_run(workdir, good_data, shuffled_labels_run) -> Run:
    """The good data again (every upstream component cached), with one network trained for a
    single epoch and TFMA's intervals: against the served model it is significantly worse
    overall, the page the report must make plain (issue 27)."""
    return _run_and_record(good_data, workdir, "--force", "--intervals", "--candidates", "dense", "--epochs", "1")


class TestLocalPipeline:
    def test_first_run_is_blessed_and_pushes_a_model_that_serves_raw_examples(self, workdir, good_data, first_run):
        result, executions = first_run.result, first_run.executions
        assert result.returncode == 0, result.stdout + result.stderr
        for component in UPSTREAM + ["Evaluator", "Pusher"]:
            assert f"{component} finished" in result.stdout

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
        assert not hasattr(served, "keras_api")  # the signatures, not tf_keras's traces of each layer (model.save_served)
        labels, examples = _examples(good_data, with_label=False)
        probabilities = served.signatures["serving_default"](examples=examples)["outputs"].numpy()[:, 0]
        assert ((probabilities >= 0) & (probabilities <= 1)).all()
        assert np.mean((probabilities > 0.5) == labels) > 0.7

        page = _report(workdir, result)
        assert "blessed and pushed" in page and os.path.basename(destination) in page
        for gate in ("accuracy", "false-positive rate", "false-negative rate"):
            assert re.search(rf"<td>{gate}</td>.*?class=\"pass\"", page, re.S), gate
        for title in ("Overall", "shop_type", "weekday", "class", "shop_type × weekday"):
            assert f'data-slice="{title}"' in page
        for label in [f"shop_type = {t}" for t in range(1, 21)] + [f"weekday = {d}" for d in range(1, 8)]:
            assert f"<td>{label}</td>" in page
        assert "<td>class = 0</td>" in page and "<td>class = 1</td>" in page
        assert "b&#39;" not in page and "b'" not in page  # readable labels
        assert page.count("<svg") >= 1 + 2 + 20 + 1  # heatmaps: overall, classes, shop types; curves
        assert "lowest validation loss" in page and "<td>train</td>" in page
        assert re.search(r'id="anomalies">\s*<p>none</p>', page)

    def test_the_candidate_best_on_validation_is_the_one_exported_and_pushed(self, workdir, first_run):
        executions = first_run.executions
        with open(os.path.join(executions["Trainer"].outputs["model_run"][0].uri, "history.json")) as f:
            training = json.load(f)
        candidates = {c["name"]: c for c in training["candidates"]}
        fitted = list(config.Training().candidates)
        # Every candidate, then the ensemble of those within noise of the best when there are two.
        assert list(candidates) in (fitted, fitted + ["ensemble"])
        # The lowest validation loss is exported when it beats the cross-fitted trees by more
        # than noise, else the trees (model.choose_export); history.json says which and why.
        lowest = min(candidates, key=lambda name: candidates[name]["val_loss"])
        assert training["candidate"] in (lowest, "trees")
        if training["candidate"] == lowest:
            assert training["why_exported"].startswith("it has the lowest validation loss")
        else:
            assert training["why_exported"].startswith("the cross-fitted trees are exported unless") and f"{lowest}'s" in training["why_exported"]
        chosen = candidates[training["candidate"]]
        if "ensemble" in candidates:
            members = candidates["ensemble"]["members"]
            assert len(members) >= 2 and set(members) <= set(fitted)
            best = min(fitted, key=lambda name: candidates[name]["val_loss"])
            assert best in members
        if training["candidate"] == "ensemble":
            assert training["members"] == candidates["ensemble"]["members"]

        # The pushed model is that candidate: its recorded shape, and its validation scores.
        destination = metadata.custom_property(executions["Pusher"].outputs["pushed_model"][0], "pushed_destination")
        with open(os.path.join(destination, "assets.extra", "warm_start", "inputs.json")) as f:
            exported = json.load(f)
            assert exported["candidate"] == training["candidate"]
            assert exported.get("members", []) == training.get("members", [])
        # The candidates are judged on the choosing half of the validation rows (every other
        # row of Transform's valid split in the Trainer's canonical order: model.Validation,
        # model.canonical_order); the pushed model, served those rows' raw examples, scores
        # what history.json recorded.
        import tensorflow_transform as tft

        def split_valid(artifact):
            files = sorted(glob.glob(os.path.join(artifact, "Split-valid", "*")))
            return list(tf.data.TFRecordDataset(files, compression_type="GZIP").batch(100_000))[0]

        spec = tft.TFTransformOutput(executions["Transform"].outputs["transform_graph"][0].uri).transformed_feature_spec()
        rows = tf.io.parse_example(split_valid(executions["Transform"].outputs["transformed_examples"][0].uri), spec)
        label_name = features.transformed_name(LABEL_KEY)
        labels = rows[label_name].numpy().reshape(-1)
        order = model.canonical_order({name: values.numpy() for name, values in rows.items() if name != label_name}, labels)
        rows, labels = {name: tf.gather(values, order) for name, values in rows.items()}, labels[order]
        served = tf.saved_model.load(destination)
        # Each choosing row's raw example: the one the served Transform layer turns into it
        # (Transform's output need not keep ExampleGen's order; equal rows score equally).
        raw = split_valid(executions["CsvExampleGen"].outputs["examples"][0].uri)
        recomputed = served.signatures["transform_features"](examples=raw)

        def keys(columns):
            return [tuple(np.round(values, 5)) for values in zip(*(np.reshape(columns[name].numpy(), -1) for name in sorted(spec)))]

        raw_of = collections.defaultdict(list)
        for index, key in enumerate(keys(recomputed)):
            raw_of[key].append(index)
        choosing = [raw_of[key].pop() for key in keys(rows)[1::2]]
        outputs = served.signatures["serving_default"](examples=tf.gather(raw, choosing))["outputs"]
        probabilities = np.clip(outputs.numpy()[:, 0], 1e-7, 1 - 1e-7)
        labels_choosing = labels[1::2]
        # An export with trees serves them having learned the valid rows too (cross-fitted on
        # small data), and records its figures on the rows it has now seen beside the choice's.
        refit = training.get("refit")
        exported_trees = "trees" in (training.get("members") or [training["candidate"]])
        assert bool(refit) == exported_trees
        scores = (refit["val_accuracy_seen"], refit["val_loss_seen"]) if refit else (chosen["val_accuracy"], chosen["val_loss"])
        assert np.mean((probabilities > 0.5) == labels_choosing) == pytest.approx(scores[0], abs=1e-6)
        log_loss = -np.mean(labels_choosing * np.log(probabilities) + (1 - labels_choosing) * np.log(1 - probabilities))
        assert log_loss == pytest.approx(scores[1], abs=1e-4)
        if refit:
            assert refit["rows"] == training["train_examples"] + len(labels)
            assert refit["folds"] == 5  # the bundled data is small: the trees are cross-fitted

        others = [name for name in candidates if name != training["candidate"]]
        members = training.get("members", [])
        average = f", the average of {', '.join(members[:-1])} and {members[-1]}" if members else ""
        assert f"Model: {training['candidate']} (validation loss {chosen['val_loss']:.4f}{average}; " in first_run.result.stdout
        if refit:
            assert f"its trees the mean of 5 fold models over {refit['rows']:,} training and validation rows" in first_run.result.stdout
        page = _report(workdir, first_run.result)
        assert ('id="refit"' in page) == bool(refit)
        assert f"exported <strong>{training['candidate']}</strong>" in page
        if members:
            assert f"the average of {', '.join(members)}, the candidates whose validation loss" in page
        assert f"<td>{training['candidate']} (exported)</td>" in page
        for name in others:
            assert f"<td>{name}</td><td>{candidates[name]['val_loss']:.4f}</td>" in page

    def test_unchanged_rerun_answers_from_ml_metadata_without_running(self, workdir, first_run, unchanged_run):
        result = unchanged_run.result
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"unchanged since run {first_run.run_ids[0]}" in result.stdout
        assert "Blessed and pushed:" in result.stdout and "started" not in result.stdout
        assert unchanged_run.run_ids == first_run.run_ids
        assert unchanged_run.served == first_run.served

    def test_second_run_reuses_the_cached_upstream_components(self, workdir, forced_run):
        result, executions = forced_run.result, forced_run.executions
        assert result.returncode == 0, result.stdout + result.stderr
        for component in UPSTREAM:
            assert executions[component].state == "CACHED", component
        # The cached Trainer's model is the one served: blessed again, not pushed a second time.
        assert "already served as version" in result.stdout and forced_run.served == forced_run.served_before
        # The first run's model is now the baseline: the change gate is checked.
        assert "accuracy change vs baseline" in result.stdout
        page = _report(workdir, result)
        assert "Candidate against baseline" in page and "no baseline yet" not in page

    def test_bad_data_exits_2_trains_nothing_and_keeps_the_served_model(self, workdir, bad_data, bad_data_run):
        result, executions = bad_data_run.result, bad_data_run.executions
        assert result.returncode == 2, result.stdout + result.stderr
        assert bad_data in result.stderr and "column 'avgRating'" in result.stderr
        assert "Traceback" not in result.stderr
        assert executions["AnomalyGate"].state == "FAILED"
        assert "Transform" not in executions and "Trainer" not in executions and "Pusher" not in executions
        assert bad_data_run.served == bad_data_run.served_before
        page = _report(workdir, result)
        assert "input rejected" in page and "column &#39;avgRating&#39;" in page

    def test_a_single_class_exits_2_trains_nothing_and_keeps_the_served_model(self, workdir, data_dir, one_class_run):
        result, executions = one_class_run.result, one_class_run.executions
        assert result.returncode == 2, result.stdout + result.stderr
        assert str(data_dir / "one-class" / "shops.csv") in result.stderr and "column 'class'" in result.stderr
        assert "Expected at least 2 unique values but found only 1" in result.stderr
        assert "Traceback" not in result.stderr
        assert executions["AnomalyGate"].state == "FAILED"
        assert "Transform" not in executions and "Trainer" not in executions and "Pusher" not in executions
        assert one_class_run.served == one_class_run.served_before
        assert "column &#39;class&#39;" in _report(workdir, result)

    def test_shuffled_labels_exit_3_and_push_nothing(self, workdir, shuffled_labels_run):
        result, executions = shuffled_labels_run.result, shuffled_labels_run.executions
        assert result.returncode == 3, result.stdout + result.stderr
        assert "FAIL" in result.stdout and "Not blessed" in result.stdout
        assert metadata.custom_property(executions["Evaluator"].outputs["blessing"][0], "blessed") == 0
        assert "Pusher" not in executions or executions["Pusher"].state != "COMPLETE"
        assert shuffled_labels_run.served == shuffled_labels_run.served_before
        page = _report(workdir, result)
        assert "not blessed: nothing pushed" in page
        failed = re.search(r"<td>accuracy</td>\s*<td>([0-9.]+)</td>\s*<td>[^<]*</td>\s*<td>&gt;= 0.65</td>.*?class=\"fail\">FAIL", page, re.S)
        assert failed and float(failed.group(1)) < 0.65

    def test_the_report_marks_undefined_metrics_and_writes_its_numbers_as_json(self, workdir, forced_run):
        """The forced run has a baseline (the first run's served model): its page and its JSON."""
        page = _report(workdir, forced_run.result)
        # One class per slice: the metrics that need the other class do not exist there.
        for label, undefined, reason in (
            ("class = 0", ("AUC", "recall", "FNR"), "no busy example in the slice"),
            ("class = 1", ("AUC", "FPR"), "no not-busy example in the slice"),
        ):
            row = re.search(rf"<td>{label}</td>(.*?)</tr>", page[page.index('id="slices"') :], re.S).group(1)
            assert row.count(f'<td class="undefined" title="{reason}">—</td>') >= len(undefined), label
            assert f"{', '.join(undefined)}" in row and f"undefined: {reason}" in row, row
        assert "undefined" not in re.search(r"<td>Overall</td>(.*?)</tr>", page[page.index('id="slices"') :], re.S).group(1)

        data = _report_data(forced_run.result)
        uri = forced_run.executions["Evaluator"].outputs["evaluation"][0].uri
        slices, intervals = evaluation.slice_metrics(uri), evaluation.slice_intervals(uri)
        assert len(data["slices"]) == len(slices) and data["slices"][0]["slice"] == {}
        overall = data["slices"][0]
        candidate = evaluation.candidate_name(slices[()])
        assert candidate  # a baseline was evaluated
        assert data["confidence_intervals"] == {"level": 0.95, "method": "jackknife", "buckets": 20}
        for name in ("binary_accuracy", "auc", "fall_out", "miss_rate"):
            lower, upper = intervals[()][(name, candidate, False)]  # TFMA computed one for each
            assert lower < upper
            assert overall["metrics"][name] == {"value": slices[()][(name, candidate, False)], "lower": lower, "upper": upper}
            assert overall["baseline"][name]["value"] == slices[()][(name, evaluation.BASELINE_MODEL, False)]
            difference = overall["difference"][name]
            assert difference["value"] == slices[()][(name, candidate, True)]
            assert (difference["lower"], difference["upper"]) == intervals[()][(name, candidate, True)]
        assert overall["example_count"] == slices[()][("example_count", candidate, False)]
        busy_free = next(entry for entry in data["slices"] if entry["slice"] == {"class": 0})
        assert busy_free["metrics"]["auc"] == {"value": None, "reason": "no busy example in the slice"}
        assert "auc" not in busy_free["difference"]
        assert busy_free["metrics"]["fall_out"]["value"] == slices[(("class", 0),)][("fall_out", candidate, False)]
        record = runs.load(metadata.open_store(config.Workdir(str(workdir)).metadata_path), forced_run.run_ids[0])
        gates = evaluation.gate_results(uri, record.gates)
        assert all(g.interval for g in gates)
        assert [(g["name"], g["value"], g["bound"], g["passed"], tuple(g["interval"]), g["interval_clears"]) for g in data["gates"]] == [
            (g.name, g.value, g.bound, g.passed, g.interval, g.interval_clears) for g in gates
        ]
        assert data["run_id"] == record.run_id and data["verdict"] == record.verdict
        with open(os.path.join(forced_run.executions["Trainer"].outputs["model_run"][0].uri, "history.json")) as f:
            assert data["model"]["exported"] == json.load(f)["candidate"]
        # The page: each gate's interval, and every slice's accuracy change against the
        # baseline with its interval, the significantly worse named under the verdict.
        for gate in gates:
            assert re.search(rf"<td>{re.escape(gate.name)}</td>\s*<td>{gate.value:.4f}</td>\s*<td>{gate.interval[0]:.4f} to {gate.interval[1]:.4f}</td>", page)
        changes = page[page.index('id="slice-changes"') :]
        changes = changes[: changes.index("</table>")]
        assert changes.count("<tr") - 1 == sum(1 for m in slices.values() if (evaluation.ACCURACY, candidate, True) in m)
        worse = [
            key
            for key, bounds in intervals.items()
            if bounds.get((evaluation.ACCURACY, candidate, True), (0, 0))[1] < 0
            and slices[key][("example_count", candidate, False)] >= config.REPORT_MIN_SLICE_EXAMPLES
        ]
        summary = re.search(r'<p id="worse-slices">(.*?)</p>', page, re.S).group(1)
        if worse:
            assert f"on {len(worse)} slice" in summary
            assert changes.count("<td>worse</td>") == len(worse)
        else:
            assert summary == "No slice is significantly worse than the baseline."

    def test_the_report_names_the_inputs_size_and_where_the_tensorboard_logs_are(self, workdir, good_data, first_run):
        page = _report(workdir, first_run.result)
        size = re.search(r'<small id="input-size"[^>]*>(.*?)</small>', page).group(1)
        assert size == f"1 file, {os.path.getsize(good_data):,} bytes, {ROWS:,} rows"
        logs = first_run.executions["Trainer"].outputs["model_run"][0].uri
        assert f"<code>tensorboard --logdir {logs}</code>" in page
        assert any(name.startswith("events.out.tfevents") for _, _, files in os.walk(logs) for name in files)

    def test_the_report_draws_thresholds_and_calibration_from_the_evaluators_plots(self, workdir, first_run):
        """TFMA's plots of the overall slice: at the threshold in use they hold the counts
        the Evaluator's metrics hold, and the gates judged there are the gates the run had."""
        page = _report(workdir, first_run.result)
        plots = _report_data(first_run.result)["plots"]
        uri = first_run.executions["Evaluator"].outputs["evaluation"][0].uri
        overall = evaluation.slice_metrics(uri)[()]
        assert plots["decision_threshold"] == config.DECISION_THRESHOLD
        rows = plots["thresholds"]
        assert [round(r["threshold"], 6) for r in rows] == [i / 100 for i in range(101)]
        in_use = next(r for r in rows if abs(r["threshold"] - config.DECISION_THRESHOLD) < 1e-9)
        for cell in ("true_positives", "false_positives", "true_negatives", "false_negatives"):
            assert in_use[cell] == overall[(cell, "", False)], cell
        assert in_use["binary_accuracy"] == pytest.approx(overall[(evaluation.ACCURACY, "", False)])
        record = runs.load(metadata.open_store(config.Workdir(str(workdir)).metadata_path), first_run.run_ids[0])
        assert in_use["gates_pass"] == {g.name: g.passed for g in evaluation.gate_results(uri, record.gates)}
        # Lower thresholds predict busy more often: recall never falls as the threshold does.
        recalls = [r["recall"] for r in rows]
        assert recalls == sorted(recalls, reverse=True) and recalls[0] > recalls[-1]
        buckets = plots["calibration"]
        assert sum(b["examples"] for b in buckets) == overall[("example_count", "", False)]
        for b in buckets:  # each bucket's mean score lies in it (to float precision), its rate is a share
            assert 0 <= b["lower"] <= b["upper"] <= 1 and b["lower"] - 1e-6 <= b["mean_prediction"] <= b["upper"] + 1e-6, b
            assert 0 <= b["observed_rate"] <= 1, b
        assert sum(b["observed_rate"] * b["examples"] for b in buckets) == pytest.approx(in_use["true_positives"] + in_use["false_negatives"])

        section = page[page.index('id="thresholds"') : page.index('id="training"')]
        assert section.count("<svg") == 2
        passing = [r["threshold"] for r in rows if all(r["gates_pass"].values())]
        sentence = re.search(r'<span id="passing-thresholds">(.*?)</span>', section, re.S).group(1)
        if passing:
            assert f"would all pass from {passing[0]:g} to " in sentence
        else:
            assert sentence.startswith("At none of the 101 thresholds")

    def test_reports_render_in_a_browser_without_console_messages(self, workdir, first_run, shuffled_labels_run, undertrained_run):
        """A first run (no baseline), a not-blessed one, and one whose candidate is significantly
        worse than the served model: those slices are named under the verdict and lead the table."""
        runs = {"report-first-run": first_run, "report-not-blessed": shuffled_labels_run, "report-worse-slices": undertrained_run}
        pages = {name: _report(workdir, run.result) for name, run in runs.items()}
        for name, run in runs.items():
            assert not re.search(r"""(src|href)=["']?(https?:)?//""", pages[name])  # nothing fetched
            console, screenshot = render_in_browser(_report_path(run.result), name)
            assert console == []
            assert os.path.getsize(screenshot) > 50_000
        first = pages["report-first-run"]
        assert 'id="worse-slices"' not in first and 'id="slice-changes"' not in first  # nothing to compare with
        assert undertrained_run.result.returncode == 3 and undertrained_run.served == undertrained_run.served_before
        data = _report_data(undertrained_run.result)
        upper = [(entry["difference"].get(evaluation.ACCURACY) or {}).get("upper") for entry in data["slices"]]
        worse = [
            entry
            for entry, bound in zip(data["slices"], upper)
            if bound is not None and bound < 0 and entry["example_count"] >= config.REPORT_MIN_SLICE_EXAMPLES
        ]
        assert worse and worse[0]["slice"] == {}  # the overall accuracy fell, its whole interval below 0
        html = pages["report-worse-slices"]
        summary = re.search(r'<p id="worse-slices">(.*?)</p>', html, re.S).group(1)
        assert f"on {len(worse)} slice" in summary and "Overall (" in summary, summary
        table = html[html.index('id="slice-changes"') :]
        table = table[: table.index("</table>")]
        changes = re.findall(r"<td>([^<]*)</td></tr>", table)  # each row's last cell
        assert changes[: len(worse)] == ["worse"] * len(worse) and "worse" not in changes[len(worse) :]

    def test_runs_lists_the_history_and_one_runs_lineage(self, workdir, first_run, undertrained_run):
        result = run_cli("runs", "--workdir", workdir, timeout=300)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()[1:]
        run_ids = undertrained_run.run_ids
        assert len(lines) == len(run_ids) == 6  # the unchanged re-run made no run
        assert [line.split()[0] for line in lines] == run_ids  # newest first
        assert lines[-1].split()[-2:] == ["yes", sorted(os.listdir(workdir / "serving"))[0]]
        # Undertrained, then shuffled labels: not blessed, not pushed.
        assert lines[0].split()[-2:] == lines[1].split()[-2:] == ["no", "-"]

        result = run_cli("runs", "show", first_run.run_ids[0], "--workdir", workdir, timeout=300)
        assert result.returncode == 0, result.stderr
        for node in ("CsvExampleGen", "StatisticsGen", "ExampleValidator", "Transform", "Trainer", "Evaluator", "Pusher"):
            line = next(line for line in result.stdout.splitlines() if f"-> {node}" in line)
            uri = line.split()[-1]
            assert os.path.isdir(uri), line

    def test_the_evaluator_split_over_worker_processes_computes_the_same_metrics(self, first_run, tmp_path):
        """What large inputs get (config.evaluator_beam_args): TFMA after the pipeline's reshuffle on
        two worker processes, against the first run's own in-memory Evaluator, slice by slice."""
        from bench import profile_evaluator

        executions = first_run.executions
        profile_evaluator.evaluate(
            examples_uri=executions["Evaluator"].inputs["examples"][0].uri,
            model_uri=executions["Evaluator"].inputs["model"][0].uri,
            schema_uri=executions["ImportSchemaGen"].outputs["schema"][0].uri,
            output=str(tmp_path),
            # Two workers even on a bigger machine: the split over them is what is tested.
            beam_args=config.evaluator_beam_args(config.EVALUATOR_MULTI_PROCESSING_MIN_BYTES, ["--direct_num_workers=2"]),
        )
        split = evaluation.slice_metrics(str(tmp_path))
        in_memory = evaluation.slice_metrics(executions["Evaluator"].outputs["evaluation"][0].uri)
        assert set(split) == set(in_memory) and len(split) > 30
        for slice_key, metrics in in_memory.items():
            assert split[slice_key].keys() == metrics.keys(), slice_key
            for key, value in metrics.items():
                assert split[slice_key][key] == pytest.approx(value, abs=1e-9, nan_ok=True), (slice_key, key)

    def test_predict_agrees_with_the_evaluator_on_the_eval_split(self, workdir, forced_run, tmp_path):
        # The forced run evaluated the model that is served after it.
        executions = forced_run.executions
        eval_files = glob.glob(os.path.join(executions["CsvExampleGen"].outputs["examples"][0].uri, "Split-eval", "*"))
        spec = {c: tf.io.FixedLenFeature([1], tf.int64) for c in CSV_COLUMNS}
        rows = [
            {c: int(v[0]) for c, v in tf.io.parse_single_example(record, spec).items()}
            for record in tf.data.TFRecordDataset(eval_files, compression_type="GZIP")
        ]
        eval_csv = tmp_path / "eval.csv"
        eval_csv.write_text(
            ",".join(CSV_COLUMNS) + "\n" + "".join(",".join(str(r[c]) for c in CSV_COLUMNS) + "\n" for r in rows)
        )
        out = tmp_path / "scored.csv"
        result = run_cli("predict", "--data", eval_csv, "--workdir", workdir, "--out", out, timeout=600)
        assert result.returncode == 0, result.stderr
        # The forced run's model was already served (its Trainer was cached): predict scores with that version.
        served = re.search(r"already served as version (\S+):", forced_run.result.stdout)
        assert served, forced_run.result.stdout
        scored_with = re.search(r"rows with (\S+):", result.stdout)
        assert scored_with and os.path.basename(scored_with.group(1)) == served.group(1), result.stdout
        scored = np.genfromtxt(out, delimiter=",", names=True)
        assert len(scored) == len(rows)
        counts = {
            "true_positives": np.sum((scored["busy"] == 1) & (scored["class"] == 1)),
            "true_negatives": np.sum((scored["busy"] == 0) & (scored["class"] == 0)),
            "false_positives": np.sum((scored["busy"] == 1) & (scored["class"] == 0)),
            "false_negatives": np.sum((scored["busy"] == 0) & (scored["class"] == 1)),
        }
        overall = evaluation.slice_metrics(executions["Evaluator"].outputs["evaluation"][0].uri)[()]
        candidate = evaluation.candidate_name(overall)
        assert counts == {name: overall[(name, candidate, False)] for name in counts}

    def test_predict_scores_rows_without_labels_and_rejects_bad_rows(self, workdir, good_data, bad_data, forced_run, tmp_path):
        unlabelled = tmp_path / "unlabelled.csv"
        with open(good_data) as f:
            lines = [line.split(",", 1)[1] for line in f]  # drop the class column
        unlabelled.write_text("".join(lines[:51]))
        result = run_cli("predict", "--data", unlabelled, "--workdir", workdir, timeout=600)
        assert result.returncode == 0, result.stderr
        scored = (tmp_path / "unlabelled.predictions.csv").read_text().splitlines()
        assert scored[0].endswith(",busy_probability,busy") and "class" not in scored[0]
        assert len(scored) == 51

        folder = tmp_path / "folder"  # a first file with a header and no rows, then one with rows
        folder.mkdir()
        (folder / "a.csv").write_text(lines[0])
        (folder / "b.csv").write_text("".join(lines[:11]))
        result = run_cli("predict", "--data", folder, "--workdir", workdir, "--out", tmp_path / "folder.csv", timeout=600)
        assert result.returncode == 0, result.stderr
        assert len((tmp_path / "folder.csv").read_text().splitlines()) == 11

        result = run_cli("predict", "--data", bad_data, "--workdir", workdir, timeout=600)
        assert result.returncode == 2
        assert "column 'avgRating'" in result.stderr and "Traceback" not in result.stderr

    def test_notebook_runs_headless_on_the_latest_run(self, workdir, undertrained_run, monkeypatch):
        monkeypatch.setenv("SHOPBUSY_WORKDIR", str(workdir))
        notebooks = os.path.join(REPO_ROOT, "notebooks")
        notebook = nbformat.read(os.path.join(notebooks, "latest_run.ipynb"), as_version=4)
        nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": notebooks}}).execute()
        outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
        assert not [o for o in outputs if o.output_type == "error"]
        kinds = {key for o in outputs if o.output_type == "display_data" for key in o.data}
        assert "application/vnd.jupyter.widget-view+json" in kinds  # TFMA's slicing view
        assert "text/html" in kinds  # TFDV's statistics view
