"""Weekly spans through the CLI, on one workdir, as weeks arrive: the newest span is
ingested, the model trains on the newest K accepted spans and starts from the last blessed
model, drift from the previous span is measured by TFDV and either stops the run or is
recorded, and a rejected span is never trained on later.

The weeks come from `shopbusy generate --weeks` with a covariate shift from week 3 (the mix
of shop types and hours changes); week 4 is a copy of week 3 with an hour out of range.
Each run is a module fixture that asks for the one before it.
"""

import dataclasses
import json
import os
import shutil
import subprocess

import pytest

from shopbusy.cli import common
from shopbusy.pipeline import config, ingested
from shopbusy.results import metadata, runs
from tests.helpers import run_cli

ROWS, EPOCHS = 3000, 5  # per week; 3,000 rows keep same-world weeks under the drift thresholds
LOOSE_GATES = ["--min-accuracy", "0.5", "--max-fpr", "1", "--max-fnr", "1", "--max-accuracy-drop", "1"]
# Networks, whose weights a week continues: with the trees among the candidates, five epochs
# of networks rarely beat the cross-fitted trees by more than noise, and the trees (no
# weights) would be the export every week. The trees' own weekly path: the backfill test.
NETWORKS = ["--candidates", "dense,linear"]


@pytest.fixture(scope="module")
def weeks(tmp_path_factory):
    """The generated weeks (span folders), written once; the runs see them arrive."""
    root = tmp_path_factory.mktemp("generated")
    result = run_cli(
        "generate", "--weeks", 3, "--rows", ROWS, "--seed", 7, "--drift-at", 3, "--drift", "covariate", "--out", root
    )
    assert result.returncode == 0, result.stderr
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tmp_path_factory.mktemp("arriving")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("continuous") / "workdir"


@dataclasses.dataclass
class WeekRun:
    result: subprocess.CompletedProcess
    record: runs.RunRecord
    served: list  # pushed versions after the run


def _arrive(weeks, data, week, as_span=None):
    shutil.copytree(weeks / f"span-{week}", data / f"span-{as_span or week}")


def _run(data, workdir, *args) -> WeekRun:
    result = run_cli(
        "run", "--data", data, "--workdir", workdir, "--epochs", EPOCHS, "--restarts", 1, "--train-spans", 2,
        *LOOSE_GATES, *NETWORKS, *args,
    )
    paths = config.Workdir(str(workdir))
    record = runs.latest(paths.metadata_path)
    served = sorted(os.listdir(paths.serving_dir)) if os.path.isdir(paths.serving_dir) else []
    return WeekRun(result, record, served)


@pytest.fixture(scope="module")
def week1(weeks, data, workdir):
    _arrive(weeks, data, 1)
    return _run(data, workdir)


@pytest.fixture(scope="module")
def week2(week1, weeks, data, workdir):
    _arrive(weeks, data, 2)
    return _run(data, workdir)


@pytest.fixture(scope="module")
def week3_stopped(week2, weeks, data, workdir):
    _arrive(weeks, data, 3)
    return _run(data, workdir, "--on-drift", "stop")


@pytest.fixture(scope="module")
def week3_warned(week3_stopped, data, workdir):
    return _run(data, workdir, "--on-drift", "warn")


@pytest.fixture(scope="module")
def week4_bad(week3_warned, weeks, data, workdir):
    """Week 3's rows again as span 4, one hour out of the schema's range."""
    folder = data / "span-4"
    folder.mkdir()
    lines = (weeks / "span-3" / "shops.csv").read_text().splitlines()
    header = lines[0].split(",")
    row = lines[1].split(",")
    row[header.index("hour")] = "30"
    (folder / "shops.csv").write_text("\n".join([lines[0], ",".join(row), *lines[2:]]) + "\n")
    return _run(data, workdir)


@pytest.fixture(scope="module")
def week5(week4_bad, weeks, data, workdir):
    _arrive(weeks, data, 3, as_span=5)
    return _run(data, workdir)


def _spans_of(execution, key):
    return sorted(metadata.span(a) for a in execution.inputs[key])


def test_first_week_trains_cold_on_its_own_span_with_nothing_to_compare(week1):
    assert week1.result.returncode == 0, week1.result.stderr
    assert "span 1, the newest" in week1.result.stdout
    assert week1.record.span == 1
    assert week1.record.training_spans == [1]
    assert week1.record.drift_baseline_span is None and week1.record.drift == []
    assert week1.record.warm_start == "cold start: no blessed model yet"
    assert len(week1.served) == 1


def test_second_week_trains_on_both_spans_warm_from_the_first_model(week1, week2):
    assert week2.result.returncode == 0, week2.result.stderr
    assert week2.record.span == 2
    # Transform read the newest two accepted spans through TFX's span resolution.
    assert _spans_of(week2.record.executions["Transform"], "examples") == [1, 2]
    # The Evaluator judged on the newest span alone.
    assert _spans_of(week2.record.executions["Evaluator"], "examples") == [2]
    # Same world: every column within its threshold, compared with span 1.
    assert week2.record.drift_baseline_span == 1
    assert week2.record.drift and not [m for m in week2.record.drift if m.exceeded]
    # The Trainer's base_model is the model the first week pushed, and run_fn used it.
    base = week2.record.executions["Trainer"].inputs["base_model"][0]
    assert base.uri == week1.record.model_uri
    assert week2.record.warm_start.startswith("warm start from the blessed model " + week1.record.model_uri)
    assert "Training: warm start" in week2.result.stdout
    assert len(week2.served) == 2


def test_covariate_shift_stops_the_run_under_on_drift_stop_and_changes_nothing(week2, week3_stopped):
    assert week3_stopped.result.returncode == 2, week3_stopped.result.stdout
    stderr = week3_stopped.result.stderr
    assert "input rejected" in stderr and "span 3: the data drifted from the previous span" in stderr
    record = week3_stopped.record
    # The label's share moves far beyond its threshold (0.12-0.18 against 0.05, measured);
    # of the mix, hour and shop_type move just past it, so at least one of them is named.
    drifted = {m.column for m in record.drift if m.exceeded}
    assert "class" in drifted and drifted & {"hour", "shop_type"}
    assert all(f"column '{column}'" in stderr for column in drifted)
    assert record.executions["AnomalyGate"].state == "FAILED"
    assert "Transform" not in record.executions and "Trainer" not in record.executions
    assert record.verdict == "input rejected: span 3 drifted from span 2"
    assert week3_stopped.served == week2.served


def test_the_same_drift_is_recorded_and_reported_under_on_drift_warn(week3_stopped, week3_warned, workdir):
    record = week3_warned.record
    # The run finished (a crash is exit 1): pushed, or not blessed, as its record says.
    assert week3_warned.result.returncode == common.verdict_exit_code(record), week3_warned.result.stderr
    assert record.blessed is not None
    drifted = {m.column for m in record.drift if m.exceeded}
    assert drifted == {m.column for m in week3_stopped.record.drift if m.exceeded}  # the same span 3 and span 2
    assert "class" in drifted and drifted & {"hour", "shop_type"}
    assert record.drift_baseline_span == 2
    assert "Drift from span 2:" in week3_warned.result.stdout
    assert record.training_spans == [2, 3]
    page = open(config.report_page(config.Workdir(str(workdir)).report_dir, record.run_id)).read()
    drift_section = page[page.index('id="drift"') : page.index('id="history"')]
    assert "span 2 (the previous accepted span) and span 3" in drift_section
    assert drift_section.count("drifted</td>") == len(drifted)
    assert drift_section.count("<svg") == config.REPORT_DRIFT_PLOTS
    # The baseline (week 2's model) and the candidate were scored on span 3's eval split.
    assert "the eval split of span 3" in page
    assert "The last blessed model reaches an accuracy of" in page


def test_a_rejected_span_changes_nothing_and_is_never_trained_on(week3_warned, week4_bad, week5):
    assert week4_bad.result.returncode == 2
    assert "span 4: the data does not match the schema" in week4_bad.result.stderr
    assert "column 'hour'" in week4_bad.result.stderr
    assert week4_bad.served == week3_warned.served
    # Span 4's examples exist in ML Metadata, but the gate failed on them: the next week
    # trains on the newest two *accepted* spans and compares with the newest accepted one.
    assert week5.result.returncode == common.verdict_exit_code(week5.record), week5.result.stderr
    assert week5.record.blessed is not None
    assert week5.record.training_spans == [3, 5]
    assert week5.record.drift_baseline_span == 3


def _cache_read(week):
    return [a.id for a in week.record.executions["Transform"].inputs.get("analyzer_cache", [])]


def _cache_written(week):
    return [a.id for a in week.record.executions["Transform"].outputs["updated_analyzer_cache"]]


def test_each_week_reuses_the_analysis_of_the_spans_an_earlier_week_analysed(week1, week2, week3_warned, week5):
    """Transform reads the analyzer cache the last accepted week's Transform wrote, not its
    own week's (a re-run over the same week stays a component-cache hit) and never the
    rejected weeks' (they have no Transform)."""
    assert _cache_read(week1) == []  # the first span: nothing analysed before
    assert _cache_read(week2) == _cache_written(week1)
    assert _cache_read(week3_warned) == _cache_written(week2)  # the stopped run of week 3 wrote none
    assert _cache_read(week5) == _cache_written(week3_warned)  # span 4 was rejected before Transform


def test_no_analyzer_cache_is_tfx_transform_without_one_and_the_flag_reaches_the_dag(tmp_path):
    """`--no-analyzer-cache`: Transform neither reads a cache nor writes one (TFX's
    disable_analyzer_cache); the default, with K > 1, reads the one resolved from ML Metadata."""
    from shopbusy.pipeline import pipeline

    parser = common.training_flags()
    assert parser.parse_args([]).analyzer_cache is True and parser.parse_args(["--no-analyzer-cache"]).analyzer_cache is False

    def transform(**kwargs):
        run = config.RunConfig.local(str(tmp_path), "span-{SPAN}/*", config.Workdir(str(tmp_path / "w")), train_spans=3, **kwargs)
        [node] = [c for c in pipeline.create_pipeline(run).components if c.id == "Transform"]
        return node

    cached, uncached = transform(), transform(analyzer_cache=False)
    assert "analyzer_cache" in cached.inputs and "updated_analyzer_cache" in cached.outputs
    assert "analyzer_cache" not in uncached.inputs and "updated_analyzer_cache" not in uncached.outputs


def test_a_rerun_of_a_week_would_read_the_cache_its_first_run_read_and_so_be_a_cache_hit(week5, workdir):
    """What `run --force` of week 5 would feed its Transform, resolved by the same op over the
    same ML Metadata: the cache week 5 read, not the one it wrote, so the re-run's Transform
    has the same inputs and properties as week 5's and TFX answers it from the component
    cache. (Resolved here, not re-run: one more pipeline run would cost `make test` minutes.)"""
    from tfx.dsl.input_resolution import resolver_op
    from tfx.orchestration import metadata as tfx_metadata
    from tfx.types import artifact_utils

    from shopbusy.pipeline import resolvers
    from shopbusy.pipeline.tfx_api import tfx

    cache_type = tfx.types.standard_artifacts.TransformCache
    with tfx_metadata.Metadata(tfx_metadata.sqlite_metadata_connection_config(config.Workdir(str(workdir)).metadata_path)) as handle:
        caches = [artifact_utils.deserialize_artifact(handle.store.get_artifact_type(cache_type.TYPE_NAME), a)
                  for a in handle.store.get_artifacts_by_type(cache_type.TYPE_NAME)]
        assert len(caches) == 4  # weeks 1, 2, 3 (warned) and 5 each wrote one
        op = resolvers.CacheBeforeNewestSpan.create(pipeline_name=config.PIPELINE_NAME)
        op.set_context(resolver_op.Context(handle))
        resolved = [a.id for a in op.apply(caches)]
    assert resolved == _cache_read(week5) != _cache_written(week5)


def test_runs_as_json_and_the_history_chart_tell_the_weeks_apart(week1, week2, week3_stopped, week4_bad, week5, workdir):
    from shopbusy.results import evaluation, history

    result = run_cli("runs", "--workdir", workdir, "--format", "json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    records = list(reversed(runs.history(config.Workdir(str(workdir)).metadata_path)))  # oldest first
    assert [r["run_id"] for r in listed] == [r.run_id for r in records]
    assert [r["outcome"] for r in listed] == [history.outcome(r) for r in records]
    by_id = {r["run_id"]: r for r in listed}
    assert by_id[week1.record.run_id]["outcome"] == by_id[week2.record.run_id]["outcome"] == "pushed"
    stopped, bad = by_id[week3_stopped.record.run_id], by_id[week4_bad.record.run_id]
    assert stopped["outcome"] == bad["outcome"] == "rejected" and stopped["accuracy"] is None
    assert stopped["largest_drift"]["share_of_threshold"] > 1 and stopped["largest_drift"]["column"] in {m.column for m in week3_stopped.record.drift}
    second = by_id[week2.record.run_id]
    slices = evaluation.slice_metrics(week2.record.evaluation_uri)
    candidate = evaluation.candidate_name(slices[()])
    assert second["accuracy"] == slices[()][(evaluation.ACCURACY, candidate, False)]
    assert second["accuracy_by_shop_type"] and all(0 <= a <= 1 for a in second["accuracy_by_shop_type"].values())
    assert second["training_spans"] == [1, 2] and second["largest_drift"]["share_of_threshold"] <= 1

    page = open(config.latest_report_page(config.Workdir(str(workdir)).report_dir)).read()
    section = page[page.index('id="history"') : page.index('id="data"')]
    assert f"The workdir's {len(listed)} runs up to this one" in section and section.count("<svg") == 1
    for label in ("pushed", "input rejected", "drift threshold"):
        assert label in section, label


def test_a_transform_that_read_the_cache_scales_by_every_training_spans_rows(week2):
    """Week 2's z-scores use the mean and variance of spans 1 and 2 together, though span 1's
    share came from week 1's cache."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_transform as tft

    from shopbusy.components.modules import features

    transform = week2.record.executions["Transform"]
    files = [f for a in transform.inputs["examples"] for f in tf.io.gfile.glob(os.path.join(a.uri, "Split-train", "*"))]
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
    output = tft.TFTransformOutput(transform.outputs["transform_graph"][0].uri)
    raw = tf.io.parse_example(serialized, output.raw_feature_spec())
    transformed = output.transform_features_layer()(raw)
    for key in ("avgTime", "avgDistance"):
        values = np.asarray(raw[key], dtype=np.float64).ravel()
        expected = (values - values.mean()) / values.std()
        np.testing.assert_allclose(np.asarray(transformed[features.transformed_name(key)]).ravel(), expected, rtol=1e-3, atol=1e-3)


def test_predict_warns_of_skew_against_the_served_models_training_data(week2, weeks, workdir):
    """Week 2's model (trained on weeks 1-2) against week 2's rows and the shifted week 3."""
    model = os.path.join(config.Workdir(str(workdir)).serving_dir, week2.served[-1])
    out = workdir.parent  # not beside the inputs: the generated weeks stay as generated for other tests
    same = run_cli("predict", "--workdir", workdir, "--model", model, "--data", weeks / "span-2" / "shops.csv", "--out", out / "same.csv")
    shifted = run_cli(
        "predict", "--workdir", workdir, "--model", model, "--data", weeks / "span-3" / "shops.csv", "--out", out / "shifted.csv"
    )
    assert same.returncode == 0 and shifted.returncode == 0, same.stderr + shifted.stderr
    assert "skew" not in same.stdout
    assert "training/serving skew" in shifted.stdout and "column 'class'" in shifted.stdout
    # Serving rows carry no label: that is the SERVING environment, not skew.
    unlabelled = out / "unlabelled.csv"
    with open(weeks / "span-2" / "shops.csv") as source, open(unlabelled, "w") as target:
        for line in source:
            target.write(line.split(",", 1)[1])  # `class` is the first column
    serving = run_cli("predict", "--workdir", workdir, "--model", model, "--data", unlabelled, "--out", out / "serving.csv")
    assert serving.returncode == 0, serving.stderr
    assert "skew" not in serving.stdout and "column 'class'" not in serving.stdout


def test_a_fresh_workdir_backfills_the_spans_already_there_in_order(weeks, tmp_path):
    """Weeks already in the folder, a workdir no run has used: the earlier span is ingested
    first, a run of its own, so the newest run trains on both accepted spans and checks
    drift against the one before, as if the weeks had arrived one by one. A week that
    arrives late (span 2 after span 3) is ingested by the next run, and the newest span's
    run is made again on the newest accepted spans, the late one among them."""
    arrived = tmp_path / "arrived"
    for week in (1, 3):
        shutil.copytree(weeks / f"span-{week}", arrived / f"span-{week}")
    workdir = tmp_path / "backfilled"
    # The trees alone: the cheapest candidate, and the one whose export is not a network.
    week = _run(arrived, workdir, "--candidates", "trees")
    assert week.result.returncode == common.verdict_exit_code(week.record), week.result.stderr
    assert "backfilling span 1" in week.result.stdout and "backfilling span 3" not in week.result.stdout
    history = runs.history(config.Workdir(str(workdir)).metadata_path)
    assert sorted(record.span for record in history) == [1, 3]
    assert runs.ingested_spans(config.Workdir(str(workdir)).metadata_path) == {1, 3}  # what the backfill asks
    assert week.record.span == 3 and week.record.training_spans == [1, 3]
    assert week.record.drift_baseline_span == 1

    # Trees keep no weights: the second run refits them, and its Evaluator loaded the served
    # trees as its baseline beside the new ones.
    assert week.record.chosen_candidate == "trees" and week.record.warm_start.startswith("refitted")
    assert len(week.served) == 2, week.result.stdout
    scored = run_cli("predict", "--workdir", workdir, "--data", arrived / "span-3" / "shops.csv", "--out", tmp_path / "scored.csv")
    assert scored.returncode == 0, scored.stderr
    with open(arrived / "span-3" / "shops.csv") as rows, open(tmp_path / "scored.csv") as scores:
        assert sum(1 for _ in scores) == sum(1 for _ in rows)

    # A late week the pre-flight rejects is reported, and changes nothing: no run of it, and
    # the newest span's run is not made again (nothing would train on the late week).
    (arrived / "span-2").mkdir()
    with open(weeks / "span-2" / "shops.csv") as good, open(arrived / "span-2" / "shops.csv", "w") as bad:
        header, first, *rest = good.readlines()
        cells = first.split(",")
        cells[header.split(",").index("avgTime")] = "slow"
        bad.writelines([header, ",".join(cells), *rest])
    rejected = _run(arrived, workdir, "--candidates", "trees")
    assert rejected.result.returncode == common.verdict_exit_code(week.record), rejected.result.stderr
    assert "span 2 (earlier than the newest) rejected" in rejected.result.stderr and "avgTime" in rejected.result.stderr
    assert str(arrived / "span-2" / "shops.csv") in rejected.result.stderr
    assert "up to date" in rejected.result.stdout and "backfilling" not in rejected.result.stdout
    assert rejected.record.run_id == week.record.run_id and rejected.served == week.served
    assert len(runs.history(config.Workdir(str(workdir)).metadata_path)) == 2
    assert runs.ingested_spans(config.Workdir(str(workdir)).metadata_path) == {1, 3}
    shutil.rmtree(arrived / "span-2")

    shutil.copytree(weeks / "span-2", arrived / "span-2")
    late = _run(arrived, workdir, "--candidates", "trees")
    assert late.result.returncode == common.verdict_exit_code(late.record), late.result.stderr
    assert "backfilling span 2" in late.result.stdout and "up to date" not in late.result.stdout
    history = runs.history(config.Workdir(str(workdir)).metadata_path)
    assert [record.span for record in history] == [3, 2, 3, 1]  # newest first
    assert runs.ingested_spans(config.Workdir(str(workdir)).metadata_path) == {1, 2, 3}
    assert history[1].drift_baseline_span == 1  # the late week against the accepted one before it
    assert late.record.span == 3 and late.record.training_spans == [2, 3]
    again = _run(arrived, workdir, "--candidates", "trees")
    assert "up to date" in again.result.stdout and "backfilling" not in again.result.stdout


def test_backfill_only_for_span_folders_in_a_workdir_no_run_has_used(weeks, tmp_path, monkeypatch):
    from shopbusy.cli import run as run_command
    from shopbusy.data import inputs

    source = inputs.resolve(str(weeks))
    fresh = config.Workdir(str(tmp_path / "fresh"))
    assert run_command._spans_to_backfill(source, fresh, None) == [1, 2]
    assert run_command._spans_to_backfill(source, fresh, False) == []  # --no-backfill
    used = config.Workdir(str(tmp_path))
    open(used.metadata_path, "w").close()
    monkeypatch.setattr(runs, "ingested_spans", lambda metadata_path: set())  # no run got as far as ExampleGen
    assert run_command._spans_to_backfill(source, used, None) == []  # earlier spans count once ingested
    single = inputs.resolve(str(weeks / "span-1" / "shops.csv"))
    assert run_command._spans_to_backfill(single, fresh, True) == []


@pytest.mark.parametrize("ingested,late", [({1, 3}, [2]), ({2, 3}, []), ({3}, []), ({1, 2, 3}, [])])
def test_a_used_workdir_backfills_a_span_that_arrived_after_a_newer_one(weeks, tmp_path, monkeypatch, ingested, late):
    """Only a span between ones already ingested is late; older ones were left out on purpose."""
    from shopbusy.cli import run as run_command
    from shopbusy.data import inputs

    used = config.Workdir(str(tmp_path))
    open(used.metadata_path, "w").close()
    monkeypatch.setattr(runs, "ingested_spans", lambda metadata_path: ingested)
    source = inputs.resolve(str(weeks))
    assert run_command._spans_to_backfill(source, used, None) == late
    assert run_command._spans_to_backfill(source, used, False) == []


def test_each_earlier_span_is_checked_on_its_own(weeks, tmp_path):
    """An empty late folder (a week still being copied in) or a bad cell rejects that span
    alone, naming the folder or file and column; the others stay runnable."""
    from shopbusy.cli import run as run_command

    shutil.copytree(weeks / "span-1", tmp_path / "span-1")
    (tmp_path / "span-2").mkdir()
    (tmp_path / "span-3").mkdir()
    with open(weeks / "span-3" / "shops.csv") as good, open(tmp_path / "span-3" / "shops.csv", "w") as bad:
        header, first, *rest = good.readlines()
        bad.writelines([header, first.replace(",", ",,", 1), *rest])
    first, empty, broken = run_command._preflight(str(tmp_path), [1, 2, 3])
    assert first.rejected is None and first.source.files == [str(tmp_path / "span-1" / "shops.csv")]
    assert empty.source is None and "span-2" in str(empty.rejected) and "no CSV file" in str(empty.rejected)
    assert broken.source is None and str(tmp_path / "span-3" / "shops.csv") in str(broken.rejected)


def test_no_span_is_ingested_before_example_gen_wrote_one(tmp_path):
    """A workdir whose only run failed in ExampleGen has its node context but no Examples
    type in ML Metadata yet: no span was ingested, and asking is not an error."""
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    from shopbusy.pipeline import nodes

    path = str(tmp_path / "metadata.sqlite")
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = path
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    store = metadata_store.MetadataStore(connection)
    assert runs.ingested_spans(path) == set()
    node = store.put_context_type(metadata_store_pb2.ContextType(name=ingested.NODE_CONTEXT_TYPE))
    [context] = store.put_contexts([metadata_store_pb2.Context(type_id=node, name=f"{config.PIPELINE_NAME}.{nodes.EXAMPLE_GEN}")])
    assert runs.ingested_spans(path) == set()

    # Only what ExampleGen published counts: not the pending output of a run that failed in it.
    examples = store.put_artifact_type(metadata_store_pb2.ArtifactType(name=ingested.EXAMPLES_TYPE))
    states = {1: metadata_store_pb2.Artifact.LIVE, 2: metadata_store_pb2.Artifact.PENDING, 3: metadata_store_pb2.Artifact.ABANDONED}
    artifacts = []
    for span, state in states.items():
        artifact = metadata_store_pb2.Artifact(type_id=examples, uri=f"/span-{span}", state=state)
        artifact.custom_properties["span"].int_value = span  # as TFX's driver writes it
        artifacts.append(artifact)
    ids = store.put_artifacts(artifacts)
    store.put_attributions_and_associations([metadata_store_pb2.Attribution(context_id=context, artifact_id=i) for i in ids], [])
    assert runs.ingested_spans(path) == {1}


def test_ml_metadata_is_read_with_tfx_names():
    """ingested.py reads ML Metadata without TFX, so its names are TFX 1.16's, checked here."""
    from tfx.dsl.compiler import compiler_utils, constants

    from shopbusy.pipeline.tfx_api import tfx

    assert ingested.NODE_CONTEXT_TYPE == constants.NODE_CONTEXT_TYPE_NAME
    assert ingested.node_context_name("p", "n") == compiler_utils.node_context_name("p", "n")
    assert ingested.EXAMPLES_TYPE == tfx.types.standard_artifacts.Examples.TYPE_NAME
