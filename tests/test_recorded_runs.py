"""A cluster run read back from the record its tasks leave under the pipeline root
(components/run_record.py, results/recorded_runs.py), without ML Metadata: the artifacts land
where runs.RunRecord looks for them, the metadata TFX's v2 entrypoint wraps reads as ML
Metadata holds it, a blessed model is found pushed by the serving folder's markers, a span
the gate rejected reads as rejected, and ram:// stands in for a bucket."""

import datetime
import json

import tensorflow as tf
from ml_metadata.proto import metadata_store_pb2
from tfx.types import standard_artifacts

from shopbusy.components import run_record, served_models
from shopbusy.pipeline import config, nodes
from shopbusy.results import recorded_runs


def _artifact(artifact_type, uri, **metadata):
    """A TFX artifact as the v2 entrypoint hands it to a task: the metadata fields its type
    declares as typed properties, every other as {"__value__": value}
    (kubeflow_v2_entrypoint_utils._parse_raw_artifact)."""
    artifact = artifact_type()
    artifact.uri = uri
    for name, value in metadata.items():
        if name in (artifact_type.PROPERTIES or {}):
            setattr(artifact, name, int(value))
        else:
            artifact.mlmd_artifact.custom_properties[name].struct_value.update({"__value__": value})
    return artifact


def _artifacts(root):
    return {
        "examples": [_artifact(standard_artifacts.Examples, f"{root}/run/CsvExampleGen/examples", span=4.0, input_fingerprint="split:single_split,num_files:1,total_bytes:10,xor_checksum:1,sum_checksum:1")],
        "statistics": [_artifact(standard_artifacts.ExampleStatistics, f"{root}/run/StatisticsGen/statistics")],
        "baseline_statistics": [_artifact(standard_artifacts.ExampleStatistics, f"{root}/run/PreviousAcceptedSpan/statistics", span=2.0, accepted_spans="[2]")],
        "training_examples": [_artifact(standard_artifacts.Examples, f"{root}/run/AcceptedTrainingSpans/training_examples", accepted_spans="[2, 4]")],
        "model": [_artifact(standard_artifacts.Model, f"{root}/run/Trainer/model")],
        "blessing": [_artifact(standard_artifacts.ModelBlessing, f"{root}/run/Evaluator/blessing", blessed=1.0)],
    }  # fmt: skip


def _data(root, artifacts=None, minute=15, **kwargs):
    now = datetime.datetime(2026, 12, 1, 10, minute, tzinfo=datetime.timezone.utc)
    return run_record.record_data(artifacts or _artifacts(root), "gs://b/data", now=now, **kwargs)


def test_wrapped_metadata_reads_as_ml_metadata_holds_it():
    wrapped = _artifact(standard_artifacts.Model, "/x", span=4.0, version=0.5, input_fingerprint="f", flag=True)
    plain = run_record.plain(wrapped.mlmd_artifact)
    values = {name: getattr(v, v.WhichOneof("value")) for name, v in plain.custom_properties.items()}
    assert values == {"span": 4, "version": 0.5, "input_fingerprint": "f", "flag": 1}
    assert plain.custom_properties["span"].WhichOneof("value") == "int_value"
    struct = metadata_store_pb2.Artifact()
    struct.custom_properties["matrix"].struct_value.update({"rows": [1]})  # a real struct stays one
    assert run_record.plain(struct) == struct


def test_the_record_puts_each_artifact_where_the_run_record_reads_it(tmp_path):
    data = _data(str(tmp_path), eval_config_json='{"slicingSpecs": []}')
    record = recorded_runs.to_record(json.loads(json.dumps(data)), pusher_follows=True)
    assert record.run_id == "20261201-101500-span-4" and record.started == datetime.datetime(2026, 12, 1, 10, 15)
    assert record.span == 4
    assert record.training_spans == [2, 4]
    assert record.drift_baseline_span == 2
    assert record.data_path == "gs://b/data"
    assert record.input_size == {"files": 1, "bytes": 10}
    assert record.model_uri == f"{tmp_path}/run/Trainer/model"
    assert record.eval_config_json == '{"slicingSpecs": []}'
    assert record.blessed is True and record.pushed_model is None
    assert record.verdict == "blessed: the Pusher pushes it next"


def test_one_training_span_is_the_examples_transform_read(tmp_path):
    artifacts = _artifacts(str(tmp_path))
    del artifacts["training_examples"], artifacts["baseline_statistics"]
    record = recorded_runs.to_record(_data(str(tmp_path), artifacts=artifacts))
    assert record.training_spans == [4] and record.drift_baseline_span is None


def test_a_blessed_model_is_pushed_when_a_served_versions_marker_names_it(tmp_path):
    root = "ram://recorded-runs-push"
    data = _data(root)
    serving = f"{root}/{config.SERVING_DIR}"
    assert recorded_runs.to_record(data, served=recorded_runs.served_versions(serving)).verdict == "blessed, not pushed"
    for version, model in (("100", f"{root}/older/Trainer/model"), ("200", f"{root}/run/Trainer/model")):
        tf.io.gfile.makedirs(f"{serving}/{version}")
        served_models.write_marker(f"{serving}/{version}", version, model, "")
    record = recorded_runs.to_record(data, served=recorded_runs.served_versions(serving))
    assert record.verdict == "blessed and pushed" and record.pushed_version == "200"
    assert record.executions[nodes.PUSHER].outputs["pushed_model"]


def test_a_span_the_gate_rejected_reads_as_rejected(tmp_path):
    artifacts = _artifacts(str(tmp_path))
    for role in ("training_examples", "model", "blessing"):
        del artifacts[role]
    record = recorded_runs.to_record(_data(str(tmp_path), artifacts=artifacts, rejected=True))
    assert record.executions[nodes.ANOMALY_GATE].state == "FAILED"
    assert record.verdict == "input rejected: the data does not match the schema"  # no drift measured here
    assert record.evaluation_uri is None and record.blessed is None
    assert record.training_spans == [] and record.drift_baseline_span == 2


def test_every_recorded_run_under_a_root_oldest_first():
    root = "ram://recorded-runs-all"
    assert recorded_runs.load_all(root) == []
    for minute in (20, 10):
        run_record.write(root, _data(root, minute=minute))
    tf.io.gfile.makedirs(f"{run_record.reports_dir(root)}/no-record-yet")
    assert [r.run_id for r in recorded_runs.load_all(root)] == ["20261201-101000-span-4", "20261201-102000-span-4"]
    assert [name for name in tf.io.gfile.listdir(f"{run_record.reports_dir(root)}/20261201-101000-span-4")] == ["record.json"]


def test_report_on_a_root_without_records_is_one_line_exit_2(tmp_path, capsys):
    from shopbusy.cli import main

    assert main(["report", "--pipeline-root", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"shopbusy: {tmp_path} holds no recorded runs (no reports/*/record.json")
    assert not (tmp_path / "out").exists()
