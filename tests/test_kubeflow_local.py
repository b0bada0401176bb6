"""The compiled spec executed under the KFP v2 container contract (`shopbusy kubeflow
run-local`), as open-source Kubeflow Pipelines' driver and launcher build it and as Vertex AI
does: the weekly loop per launcher, asserted on ML Metadata and the artifacts. The specs
train on the newest two accepted spans and stop on drift (--train-spans 2 --on-drift stop).

1. span 1 starts cold: every task completes, there is no drift baseline, the model is blessed
   and pushed under <root>/serving, and the span is recorded as accepted; again over the same
   data: the UpToDate check finds the served model made from it, every other task is
   skipped, nothing is pushed, and the run says so (exit 0);
2. span 2, with a gate no model can pass: the new span is read (not a cache hit), trained on
   with span 1, warm-started from the served model, checked for drift against span 1; the
   first run's model is the Evaluator's baseline (the change gate is computed), nothing is
   pushed;
3. span 3 has a covariate shift: the AnomalyGate stops the run, naming the drifted columns,
   nothing after it runs, serving is unchanged and the span is not recorded;
4. span 4 is trained on with span 2 (never the rejected 3), and its drift baseline is span 2;
each run that reaches the Evaluator leaves its report as the artifacts the KFP and Vertex run
pages draw (system.HTML, .Markdown, .Metrics, .ClassificationMetrics with a display_name);
`shopbusy report --pipeline-root` renders each of those weeks from the root alone, and a
browser renders the page; and `shopbusy report` renders a run from the ML Metadata it left.
Under the kfp launcher the weeks meet three backend versions' executor inputs in turn (a
cluster upgraded between weeks): 2.0-2.4, 2.5-2.14 (executor-logs), 2.15 and later.
`make test-kubeflow` (about 12 minutes on 2 cores)."""

import dataclasses
import json
import os
import re
import shutil

import pytest

from shopbusy.components import accepted_spans, served_models, spanwise_transform
from shopbusy.data import generator
from shopbusy.results import runs as run_records
from tests.helpers import run_cli

pytestmark = pytest.mark.kubeflow

ROWS, SEED = 2000, 5  # with this seed, same-world weeks stay under the drift thresholds
# The spec's Trainer fits two small networks for five epochs, judged by gates they pass: the
# runs test the orchestration (a network warm-starts from the served one); the model family
# and the default gates are tested elsewhere.
TRAINING = ["--candidates", "linear,dense", "--epochs", "5"]
GATES = {"normal": ["--min-accuracy", "0.7", "--max-fpr", "0.4", "--max-fnr", "0.4"], "strict": ["--min-accuracy", "0.999"]}
IMAGE = "shopbusy:test"
# In-memory Beam: the data are small and each task is a fresh process (worker start-up would dominate).
BEAM = "--beam-arg=--direct_running_mode=in_memory"
SPEC_SUFFIX = {"kfp": "yaml", "vertex": "json"}


@dataclasses.dataclass
class Run:
    result: object
    run_id: str
    executions: dict  # task name -> (state name, {output key: [artifacts]})
    store: object
    record: object  # results.runs.RunRecord: what `shopbusy report` reads of the run
    served: list  # the versions under <root>/serving after the run


def _store(workdir):
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as mlmd

    connection = mlmd.ConnectionConfig()
    connection.sqlite.filename_uri = str(workdir / "metadata.sqlite")
    connection.sqlite.connection_mode = mlmd.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(connection)


def _executions(store, run_id):
    from ml_metadata.proto import metadata_store_pb2 as mlmd

    context = store.get_context_by_type_and_name("system.PipelineRun", run_id)
    executions = {}
    for execution in store.get_executions_by_context(context.id):
        outputs = {}
        for event in store.get_events_by_execution_ids([execution.id]):
            if event.type == mlmd.Event.OUTPUT:
                outputs.setdefault(event.path.steps[0].key, []).extend(store.get_artifacts_by_id([event.artifact_id]))
        state = mlmd.Execution.State.Name(execution.last_known_state)
        executions[execution.custom_properties["task_name"].string_value] = (state, outputs)
    return executions


def _property(artifact, name):
    value = artifact.custom_properties[name]
    return getattr(value, value.WhichOneof("value"))


@pytest.fixture(scope="module", params=["kfp", "vertex"])
def weeks(request, tmp_path_factory):
    """Compiled specs and a data folder that grows by a span per run, for one launcher."""
    launcher, folder = request.param, tmp_path_factory.mktemp(f"kubeflow-{request.param}")
    root = folder / "root"
    specs = {}
    for name, gates in GATES.items():
        specs[name] = folder / f"{name}.{SPEC_SUFFIX[launcher]}"
        result = run_cli(
            "kubeflow", "compile", "--pipeline-root", root, "--image", IMAGE, "--spans", "--train-spans", "2",
            "--on-drift", "stop", BEAM, *TRAINING, "--output", specs[name], *gates, timeout=600,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    # The same shops every week; week 3 alone with another mix of shops and hours.
    shifted = generator.generate_weeks(weeks=3, rows=ROWS, seed=SEED, drift_at=3, drift="covariate")[2]
    for week, dataset in enumerate(generator.generate_weeks(weeks=4, rows=ROWS, seed=SEED), start=1):
        dataset = shifted if week == 3 else dataset
        os.makedirs(folder / "weeks" / f"span-{week}")
        generator.write_csv(dataset, str(folder / "weeks" / f"span-{week}" / "shops.csv"))
    return launcher, folder, root, specs


# The kfp launcher's backend version for each run (local_launcher.KFP_SHAPES): a cluster
# upgraded between weeks. The re-run over week 1's data meets the newest.
BACKEND_VERSION = {"week 1": "2.0", "again": "2.15", "week 2": "2.5", "week 3": "2.5", "week 4": "2.15"}


def _run(weeks, spec, span, version) -> Run:
    launcher, folder, root, specs = weeks
    if not (folder / "data" / f"span-{span}").exists():
        shutil.copytree(folder / "weeks" / f"span-{span}", folder / "data" / f"span-{span}")
    result = run_cli(
        "kubeflow", "run-local", "--package", specs[spec], "--workdir", folder / "local",
        "--data", folder / "data", "--launcher", launcher, "--backend-version", BACKEND_VERSION[version], timeout=1500,
    )  # fmt: skip
    run_id = result.stdout.split()[1]
    store = _store(folder / "local")
    served = served_models.pushed_versions(str(root / "serving"))
    return Run(result, run_id, _executions(store, run_id), store, run_records.load(store, run_id), served)


@pytest.fixture(scope="module")
def runs(weeks):
    """The weekly runs, in order (each depends on the one before)."""
    first = _run(weeks, "normal", 1, "week 1")
    served_after_first = first.served
    again = _run(weeks, "normal", 1, "again")
    gated = _run(weeks, "strict", 2, "week 2")
    rejected = _run(weeks, "normal", 3, "week 3")
    fourth = _run(weeks, "normal", 4, "week 4")
    return first, served_after_first, gated, rejected, again, fourth


TASKS = ["UpToDate", "CsvExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator", "PreviousAcceptedSpan",
         "DistributionValidator", "AnomalyGate", "AcceptedTrainingSpans", "Transform", "Trainer", "Evaluator",
         "Pusher", "SliceReport"]  # fmt: skip


def _accepted(root):
    return [record["span"] for record in accepted_spans.accepted(str(root / accepted_spans.ACCEPTED_SPANS_DIR))]


def test_first_span_every_task_completes_and_the_blessed_model_is_pushed(weeks, runs):
    launcher, _, root, _ = weeks
    first, served, _, _, _, _ = runs
    assert first.result.returncode == 0, first.result.stdout + first.result.stderr
    for task in TASKS:
        assert first.executions[task][0] == "COMPLETE", task
    [examples] = first.executions["CsvExampleGen"][1]["examples"]
    assert _property(examples, "span") == 1
    [blessing] = first.executions["Evaluator"][1]["blessing"]
    assert _property(blessing, "blessed") == 1
    assert "baseline_model_id" not in blessing.custom_properties  # nothing served yet
    [model] = first.executions["Trainer"][1]["model"]
    [pushed] = first.executions["Pusher"][1]["pushed_model"]
    assert len(served) == 1
    version_dir = root / "serving" / served[0]
    assert _property(pushed, "pushed_destination") == str(version_dir)
    assert (version_dir / "saved_model.pb").exists()
    marker = json.loads((version_dir / served_models.PUSHED_MARKER).read_text())
    assert marker["model"] == model.uri and marker["version"] == served[0]
    # A cold start: no earlier accepted span to train on or to compare with, nothing served.
    assert first.record.training_spans == [1]
    assert first.record.drift_baseline_span is None and first.record.drift == []
    assert first.record.warm_start == "cold start: no blessed model yet"


def test_a_rerun_over_the_same_data_skips_every_task_and_pushes_nothing(weeks, runs):
    """A scheduled run whose data did not change: the served model was made from it with this
    configuration (its pushed.json marker), so nothing runs after the UpToDate check, on
    either backend; the served model stays and the run says why."""
    _, _, root, _ = weeks
    first, served, _, _, again, _ = runs
    assert again.result.returncode == 0, again.result.stdout + again.result.stderr
    assert "up to date" in again.result.stdout
    assert again.executions["UpToDate"][0] == "COMPLETE"
    # The tasks that start a run are not triggered (the driver records CANCELED); the tasks
    # after them never start (argocompiler/dag.go `depends`: "X.Succeeded").
    for task in ("CsvExampleGen", "ImportSchemaGen"):
        assert again.executions[task][0] == "CANCELED", task
    for task in ("StatisticsGen", "PreviousAcceptedSpan", "AnomalyGate", "Transform", "Trainer", "Evaluator", "Pusher", "SliceReport"):
        assert task not in again.executions, task
    assert again.served == served
    marker = served_models.read_marker(str(root / "serving" / served[0]))
    [examples] = first.executions["CsvExampleGen"][1]["examples"]
    assert marker["trained_on"]["span"] == 1
    assert marker["trained_on"]["fingerprint"] == _property(examples, "input_fingerprint")


def test_second_span_is_trained_with_the_first_warm_started_checked_for_drift_and_judged_against_the_served_model(weeks, runs):
    launcher, _, _, _ = weeks
    first, served, gated, _, _, _ = runs
    assert gated.result.returncode == 3, gated.result.stdout + gated.result.stderr
    # New data reach the run: ExampleGen is not a cache hit on the same data-root.
    assert gated.executions["CsvExampleGen"][0] == "COMPLETE"
    [examples] = gated.executions["CsvExampleGen"][1]["examples"]
    assert _property(examples, "span") == 2
    if launcher == "kfp":
        # Week 1 ran on a 2.0 backend, week 2 on 2.5, whose executor-logs output enters KFP's
        # cache key (cache.go: outputArtifactsSpec): a cluster upgrade misses the cache once.
        assert gated.executions["ImportSchemaGen"][0] == "COMPLETE"
    else:
        assert gated.executions["ImportSchemaGen"][0] == "CACHED"  # the cache works where it should
    # Trained on the accepted spans 1 and 2, and checked for drift against span 1 (same shops:
    # measured, under every threshold).
    assert gated.record.training_spans == [1, 2]
    [training_examples] = gated.executions["AcceptedTrainingSpans"][1]["training_examples"]
    assert json.loads(_property(training_examples, accepted_spans.ACCEPTED_SPANS_PROPERTY)) == [1, 2]
    assert gated.record.drift_baseline_span == 1
    assert gated.record.drift and not [m for m in gated.record.drift if m.exceeded]
    # Warm-started from the served model, which is also the Evaluator's baseline.
    assert gated.record.warm_start.startswith("warm start from the blessed model")
    [base] = gated.record.executions["Trainer"].inputs["base_model"]
    if launcher == "kfp":  # the ServedModel task's copy of the served version
        [served_model] = gated.executions["LatestBlessedModel"][1]["model"]
        assert base.id == served_model.id and _property(served_model, "served_version") == served[0]
    else:  # Vertex's resolver: the first run's model in ML Metadata
        assert base.id == first.executions["Trainer"][1]["model"][0].id
    # The baseline is the first run's blessed model.
    [blessing] = gated.executions["Evaluator"][1]["blessing"]
    assert _property(blessing, "blessed") == 0
    baseline = gated.store.get_artifacts_by_id([int(_property(blessing, "baseline_model_id").rsplit("/", 1)[-1])])[0]
    if launcher == "kfp":  # found by the ServedModel task in the serving folder
        assert _property(baseline, "served_version") == served[0]
    else:  # found by Vertex's resolver tasks in ML Metadata
        [first_model] = first.executions["Trainer"][1]["model"]
        assert baseline.id == first_model.id
    # The change gate was computed: TFMA wrote candidate-minus-baseline metrics.
    [evaluation] = gated.executions["Evaluator"][1]["evaluation"]
    assert "binary_accuracy" in _diff_metric_names(evaluation.uri)
    # The failing gate: the Pusher did not run, the served model stays.
    assert gated.executions["Pusher"][0] == "CANCELED"
    assert "pushed_model" not in gated.executions["Pusher"][1]
    assert gated.served == served


def _diff_metric_names(evaluation_uri):
    import tensorflow_model_analysis as tfma

    names = set()
    for slice_metrics in tfma.load_metrics(evaluation_uri):
        for key in slice_metrics.metric_keys_and_values:
            if key.key.is_diff and key.key.model_name == "candidate":
                names.add(key.key.name)
    return names


def test_a_drifted_span_stops_at_the_anomaly_gate_names_the_columns_and_changes_nothing(weeks, runs):
    _, served, _, rejected, _, _ = runs
    assert rejected.result.returncode == 2, rejected.result.stdout + rejected.result.stderr
    assert "task AnomalyGate failed" in rejected.result.stdout
    assert "span 3: the data drifted from the previous span (--on-drift stop)" in rejected.result.stdout
    drifted = {m.column for m in rejected.record.drift if m.exceeded}
    assert "class" in drifted and drifted & {"hour", "shop_type"}
    assert all(f"column '{column}'" in rejected.result.stdout for column in drifted)
    assert rejected.record.drift_baseline_span == 2
    assert rejected.executions["AnomalyGate"][0] == "FAILED"
    assert rejected.executions["ImportSchemaGen"][0] == "CACHED"  # same backend as week 2: a cache hit
    for task in ("AcceptedTrainingSpans", "Transform", "Trainer", "Evaluator", "Pusher", "SliceReport"):
        assert task not in rejected.executions, task
    assert rejected.served == served
    assert rejected.record.verdict == "input rejected: span 3 drifted from span 2"


def test_the_week_after_a_rejected_span_trains_and_compares_on_accepted_spans_only(weeks, runs):
    _, _, root, _ = weeks
    _, _, _, _, _, fourth = runs
    assert fourth.result.returncode in (0, 3), fourth.result.stdout + fourth.result.stderr
    assert _accepted(root) == [1, 2, 4]  # span 3 never recorded
    assert fourth.record.training_spans == [2, 4]
    assert fourth.record.drift_baseline_span == 2
    assert fourth.record.drift and not [m for m in fourth.record.drift if m.exceeded]
    [baseline] = fourth.executions["PreviousAcceptedSpan"][1]["statistics"]
    assert _property(baseline, "span") == 2
    assert fourth.executions["Evaluator"][0] == "COMPLETE"


def test_each_weeks_transform_reuses_the_analysis_of_the_accepted_spans_the_week_before_wrote(weeks, runs):
    """No resolver finds last week's analyzer cache on a cluster: Transform's executor reads the
    one the newest earlier accepted span's run wrote down, and analyses its spans where they
    were written, so that TensorFlow Transform's keys match (spanwise_transform.py). Week 3 was
    rejected and left no cache, so week 4 reads week 2's."""
    _, _, root, _ = weeks
    first, _, gated, _, _, fourth = runs

    def cache(run):
        [updated] = run.executions["Transform"][1]["updated_analyzer_cache"]
        return updated, _property(updated, spanwise_transform.CACHE_READ_PROPERTY), json.loads(
            _property(updated, spanwise_transform.CACHED_SPANS_PROPERTY)
        )

    (first_cache, first_read, first_cached), (gated_cache, gated_read, gated_cached) = cache(first), cache(gated)
    fourth_cache, fourth_read, fourth_cached = cache(fourth)
    assert (first_read, first_cached) == ("", [])
    assert (gated_read, gated_cached) == (first_cache.uri, [1])  # span 2 analysed, span 1 from the cache
    assert (fourth_read, fourth_cached) == (gated_cache.uri, [2])
    recorded = sorted(n for n in os.listdir(root / accepted_spans.ACCEPTED_SPANS_DIR) if n.startswith("analyzer-cache"))
    assert recorded == [f"analyzer-cache-span-{span}.json" for span in (1, 2, 4)]
    # Each cache holds an entry per span trained on, under TFX's key for the span's own folder.
    for updated, spans in ((gated_cache, gated.record.training_spans), (fourth_cache, fourth.record.training_spans)):
        assert len([n for n in os.listdir(updated.uri) if not n.startswith(".")]) == len(spans) == 2


def test_the_slice_report_of_a_kubeflow_run_from_its_ml_metadata(weeks, runs):
    _, folder, _, _ = weeks
    _, _, gated, rejected, _, _ = runs
    result = run_cli("report", "--workdir", folder / "local", "--run", gated.run_id, "--out", folder / "report", timeout=600)
    assert result.returncode == 0, result.stderr
    with open(result.stdout.strip()) as f:
        page = f.read()
    assert "not blessed: nothing pushed" in page
    assert "Candidate against baseline" in page and "no baseline yet" not in page
    assert "shop_type = " in page and "weekday = " in page  # the slices
    assert "0.999" in page  # the gate this run was judged by, from its own eval config
    result = run_cli("report", "--workdir", folder / "local", "--run", rejected.run_id, "--out", folder / "report", timeout=600)
    assert result.returncode == 0, result.stderr
    with open(result.stdout.strip()) as f:
        assert "input rejected: span 3 drifted from span 2" in f.read()


def _struct(artifact, name, launcher):
    """A list or dict metadata field as recorded: open-source KFP wraps them, {"list": [...]}
    and {"struct": {...}} (converter.go StructValueToMLMDValue), which is what its UI reads;
    run-local's Vertex store keeps a list as JSON text and a dict as a struct."""
    from google.protobuf import json_format

    value = artifact.custom_properties[name]
    if value.WhichOneof("value") == "string_value":
        assert launcher == "vertex"
        return json.loads(value.string_value)
    found = json_format.MessageToDict(value.struct_value)
    if launcher == "kfp":
        [(wrapper, inner)] = found.items()
        assert wrapper in ("list", "struct"), found
        return inner
    return found


def test_each_evaluated_run_leaves_its_report_as_the_run_page_draws_it(weeks, runs):
    """What KFP's UI reads of each type (frontend/src/components/viewers/MetricsVisualizations.tsx):
    only artifacts with a display_name; the HTML and Markdown as the file at the URI; every
    other custom property of system.Metrics as a row; confidenceMetrics' {confidenceThreshold,
    recall, falsePositiveRate} points (ROCCurveHelper.tsx); confusionMatrix's annotationSpecs
    and rows, as many rows as labels, each as long (validateConfusionMatrix). For a pushed and
    for a rejected model alike; a run stopped before the Evaluator has none."""
    launcher, _, _, _ = weeks
    first, _, gated, rejected, _, fourth = runs
    verdicts = {"week 1": "blessed: the Pusher pushes it next", "week 2": "not blessed: nothing pushed"}
    for week, run in (("week 1", first), ("week 2", gated), ("week 4", fourth)):
        state, outputs = run.executions["SliceReport"]
        assert state == "COMPLETE", week
        types = {key: run.store.get_artifact_types_by_id([a.type_id])[0].name for key, [a] in outputs.items()}
        assert {types[k] for k in ("report", "verdict", "metrics", "classification")} == {
            "system.HTML", "system.Markdown", "system.Metrics", "system.ClassificationMetrics"
        }, week
        artifacts = {key: artifact for key, [artifact] in outputs.items()}
        for key in ("report", "verdict", "metrics", "classification"):
            assert _property(artifacts[key], "display_name"), (week, key)
        with open(artifacts["report"].uri) as f:
            page = f.read()
        verdict = verdicts.get(week, _property(artifacts["report"], "verdict"))
        assert verdict in page and "shop_type = " in page and "weekday = " in page, week
        assert "src=\"http" not in page and "href=\"http" not in page  # self-contained
        with open(artifacts["verdict"].uri) as f:
            markdown = f.read()
        assert markdown.startswith(f"## {verdict}\n") and "| accuracy | " in markdown, week
        metrics = artifacts["metrics"]
        assert _property(metrics, "verdict") == verdict
        accuracy = _property(metrics, "accuracy")
        assert 0 < accuracy <= 1 and _property(metrics, "gate: accuracy").startswith(f"{accuracy:.4f} >= ")
        matrix = _struct(artifacts["classification"], "confusionMatrix", launcher)
        assert [spec["displayName"] for spec in matrix["annotationSpecs"]] == ["not busy", "busy"]
        rows = [row["row"] for row in matrix["rows"]]
        assert len(rows) == 2 and all(len(row) == 2 for row in rows)
        assert (rows[0][0] + rows[1][1]) / sum(map(sum, rows)) == pytest.approx(accuracy, abs=1e-4)
        points = _struct(artifacts["classification"], "confidenceMetrics", launcher)
        assert len(points) > 10 and all(set(p) == {"confidenceThreshold", "recall", "falsePositiveRate"} for p in points)
        assert all(0 <= p["recall"] <= 1 and 0 <= p["falsePositiveRate"] <= 1 for p in points)
    assert _property(gated.executions["SliceReport"][1]["report"][0], "verdict") == verdicts["week 2"]
    assert "SliceReport" not in rejected.executions


def test_the_report_of_each_week_from_the_pipeline_root_renders_in_a_browser(weeks, runs):
    """Without ML Metadata: what each report task, or the gate that rejected span 3, recorded
    under the root. A blessed model is found pushed in the serving folder, which the report
    task, running before the Pusher, could not; the re-run that did nothing records nothing."""
    from shopbusy.results import recorded_runs
    from tests.helpers import render_in_browser

    launcher, folder, root, _ = weeks
    first, _, gated, rejected, _, fourth = runs
    recorded = recorded_runs.load_all(str(root))
    assert [r.span for r in recorded] == [1, 2, 3, 4]
    expected = {1: first.record, 2: gated.record, 3: rejected.record, 4: fourth.record}
    for record in recorded:
        result = run_cli("report", "--pipeline-root", root, "--run", record.run_id, "--out", folder / "root-report", timeout=600)
        assert result.returncode == 0, result.stderr
        with open(result.stdout.strip()) as f:
            page = f.read()
        from_metadata = expected[record.span]
        assert from_metadata.verdict in page, record.span  # as the run's ML Metadata has it
        spans = ", ".join(map(str, from_metadata.training_spans))
        assert re.search(f'id="span">{record.span}(; trained on spans? {spans})?<', page), record.span
        assert record.training_spans == from_metadata.training_spans
        assert record.drift_baseline_span == from_metadata.drift_baseline_span
        if record.span == 3:  # stopped at the gate: the drifted columns, no slices
            assert {m.column for m in record.drift if m.exceeded} == {m.column for m in from_metadata.drift if m.exceeded}
            assert "train splits of span 2 (the previous accepted span) and span 3" in page and "shop_type = " not in page
            continue
        assert "shop_type = " in page and "weekday = " in page
        data = json.loads((folder / "root-report" / record.run_id / "report.json").read_text())
        assert data["verdict"] == from_metadata.verdict and data["training_spans"] == from_metadata.training_spans
    assert "History" in page  # week 4's page charts the three recorded weeks
    console, screenshot = render_in_browser(result.stdout.strip(), f"kubeflow-{launcher}-root-report")
    assert console == []
    assert os.path.getsize(screenshot) > 50_000
    result = run_cli("report", "--pipeline-root", root, "--run", "nope", "--out", folder / "root-report", timeout=600)
    assert result.returncode == 2 and "no run 'nope'" in result.stderr
