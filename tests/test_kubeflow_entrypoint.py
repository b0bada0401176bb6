"""TFX's v2 container entrypoint fed the input artifacts the open-source KFP driver really
sends (shopbusy/kubeflow/local_launcher.py models it from kubeflow/pipelines
backend/src/v2/metadata): shopbusy's entrypoint is needed for each shape (TFX as shipped
fails on it) and sufficient (the executor receives the TFX artifact it declared, with its
properties), and changes nothing on what Vertex AI sends."""

import argparse
import json

import pytest
from tfx.dsl.components.base import base_executor
from tfx.orchestration.kubeflow.v2 import compiler_utils
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor
from tfx.types import standard_artifacts

from shopbusy.components import slice_report
from shopbusy.kubeflow import entrypoint, local_launcher


class RecordingExecutor(base_executor.BaseExecutor):
    """Writes what it received into its output: the classes and properties of its inputs."""

    def Do(self, input_dict, output_dict, exec_properties):
        received = {
            key: [{"class": type(a).__name__, "span": a.span, "split_names": a.split_names} for a in artifacts]
            for key, artifacts in input_dict.items()
        }
        with open(output_dict["received"][0].uri, "w") as f:
            json.dump(received, f)


EXAMPLES_SCHEMA = compiler_utils.get_artifact_schema(standard_artifacts.Examples)
EXAMPLES_TYPE = {"instanceSchema": EXAMPLES_SCHEMA.decode() if isinstance(EXAMPLES_SCHEMA, bytes) else EXAMPLES_SCHEMA}
INPUTS_SPEC = {"artifacts": {"examples": {"artifactType": EXAMPLES_TYPE}}}


class _StoredExamples:
    """An Examples artifact as the launcher recorded it in ML Metadata (every metadata field a
    custom property, launcher_v2.go and converter.go)."""

    id = 42
    uri = "/data/CsvExampleGen/examples"


class _Store:
    @staticmethod
    def metadata_of(artifact):
        return {
            "span": 3.0,
            "version": 0.0,
            "split_names": '["train", "valid", "eval"]',
            "display_name": "examples",
            "store_session_info": '{"Provider":"gs"}',
        }


def _oss_examples():
    backend = local_launcher._KfpBackend(_Store(), local_launcher.KFP_SHAPES[local_launcher.NEWEST_KFP_SHAPE], "")
    return backend.input_artifact(_StoredExamples(), {"inputDefinitions": {"artifacts": {"examples": {"artifactType": EXAMPLES_TYPE}}}}, "examples")


def _vertex_examples():
    backend = local_launcher._VertexBackend(_Store(), local_launcher.KFP_SHAPES[local_launcher.NEWEST_KFP_SHAPE], "")
    return backend.input_artifact(_StoredExamples(), {"inputDefinitions": {"artifacts": {"examples": {"artifactType": EXAMPLES_TYPE}}}}, "examples")


def _system_dataset_examples():
    # KFP's own title for a dataset; what TFX artifacts arrive as when recorded under KFP types
    # (sky-uk/kfp-operator provider-service/kfp/tfx-patch; tensorflow/tfx#7768).
    return dict(_oss_examples(), type={"schemaTitle": "system.Dataset"})


# Each shape, and how TFX 1.16's kubeflow_v2_entrypoint_utils fails on it as shipped.
SHAPES = {
    "oss: empty instance schema": (_oss_examples, AttributeError, "'NoneType' object has no attribute 'get'"),
    "oss: system.* title": (_system_dataset_examples, ImportError, "Could not import system.Dataset"),
}


def _args(tmp_path, examples, extra_outputs=None):
    received = tmp_path / "received.json"
    executor_input = {
        "inputs": {"artifacts": {"examples": {"artifacts": [examples]}}},
        "outputs": {
            "artifacts": {
                "received": {
                    "artifacts": [
                        {"name": "received", "uri": str(received), "type": {"instanceSchema": "title: tfx.Schema\ntype: object\n"}}
                    ]
                },
                **(extra_outputs or {}),
            },
            "outputFile": str(tmp_path / "kfp_outputs" / "output_metadata.json"),
        },
    }
    args = argparse.Namespace(
        executor_class_path=f"{__name__}.RecordingExecutor",
        json_serialized_invocation_args=json.dumps(executor_input),
        json_serialized_inputs_spec_args=json.dumps(INPUTS_SPEC),
    )
    return (args, []), received


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_tfx_as_shipped_cannot_read_what_the_oss_driver_sends(tmp_path, shape):
    make, error, message = SHAPES[shape]
    parsed, received = _args(tmp_path, make())
    with pytest.raises(error, match=message):
        kubeflow_v2_run_executor.main(parsed)
    assert not received.exists()


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_shopbusy_entrypoint_gives_the_executor_the_declared_artifact(tmp_path, shape):
    parsed, received = _args(tmp_path, SHAPES[shape][0]())
    entrypoint.main(parsed)
    [examples] = json.loads(received.read_text())["examples"]
    assert examples == {"class": "Examples", "span": 3, "split_names": '["train", "valid", "eval"]'}
    output = json.loads((tmp_path / "kfp_outputs" / "output_metadata.json").read_text())
    assert output["artifacts"]["received"]["artifacts"][0]["uri"] == str(received)


# What open-source KFP 2.5.0 and later add to every task's outputs (driver.go provisionOutputs,
# with the default manifests' PUBLISH_LOGS=true); the launcher writes it itself.
EXECUTOR_LOGS = {"executor-logs": {"artifacts": [{"uri": "/tmp/logs/executor-logs", "type": {"schemaTitle": "system.Artifact"}}]}}


def test_tfx_as_shipped_fails_on_the_executor_logs_output_and_the_entrypoint_drops_it(tmp_path):
    parsed, received = _args(tmp_path, _vertex_examples(), EXECUTOR_LOGS)  # inputs TFX reads: only the logs fail
    with pytest.raises(ImportError, match="Could not import system.Artifact"):
        kubeflow_v2_run_executor.main(parsed)
    parsed, received = _args(tmp_path, _oss_examples(), EXECUTOR_LOGS)
    entrypoint.main(parsed)
    assert json.loads(received.read_text())["examples"][0]["span"] == 3
    output = json.loads((tmp_path / "kfp_outputs" / "output_metadata.json").read_text())
    assert set(output["artifacts"]) == {"received"}  # the launcher records executor-logs itself


def test_wrapped_list_and_struct_metadata_reach_the_executor_as_written(tmp_path):
    """converter.go stores a list as {"list": [...]} and a dict as {"struct": {...}}."""
    examples = _oss_examples()
    examples["metadata"].update({"tags": {"list": ["a", "b"]}, "stats": {"struct": {"rows": 3.0}}, "plain": {"x": 1.0}})
    executor_input = {"inputs": {"artifacts": {"examples": {"artifacts": [examples]}}}}
    fixed = json.loads(entrypoint.readable_by_tfx(json.dumps(executor_input), json.dumps(INPUTS_SPEC)))
    metadata = fixed["inputs"]["artifacts"]["examples"]["artifacts"][0]["metadata"]
    assert metadata["tags"] == ["a", "b"] and metadata["stats"] == {"rows": 3.0} and metadata["plain"] == {"x": 1.0}


def test_a_minio_root_stops_the_task_before_tfx_with_the_cause_and_the_fix(tmp_path, capsys):
    parsed, received = _args(tmp_path, _oss_examples())
    executor_input = json.loads(parsed[0].json_serialized_invocation_args)
    executor_input["outputs"]["artifacts"]["received"]["artifacts"][0]["uri"] = "minio://mlpipeline/v2/artifacts/x/received"
    parsed[0].json_serialized_invocation_args = json.dumps(executor_input)
    with pytest.raises(SystemExit) as exited:
        entrypoint.main(parsed)
    assert exited.value.code == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("PipelineRootError: this run's pipeline root is minio://")
    assert "shopbusy kubeflow submit" in line and "gs://BUCKET/PATH" in line
    assert not received.exists()


def test_what_vertex_sends_is_left_as_it_is(tmp_path):
    examples = _vertex_examples()
    fixed = json.loads(
        entrypoint.readable_by_tfx(
            json.dumps({"inputs": {"artifacts": {"examples": {"artifacts": [examples]}}}}), json.dumps(INPUTS_SPEC)
        )
    )
    assert fixed["inputs"]["artifacts"]["examples"]["artifacts"] == [examples]
    parsed, received = _args(tmp_path, examples)
    kubeflow_v2_run_executor.main(parsed)  # TFX reads it as shipped
    assert json.loads(received.read_text())["examples"][0]["class"] == "Examples"


class ReportingExecutor(base_executor.BaseExecutor):
    """Writes its HTML output as the SliceReport task does: a file at the URI, a display name."""

    def Do(self, input_dict, output_dict, exec_properties):
        [page] = output_dict["report"]
        with open(page.uri, "w") as f:
            f.write(f"<html>{type(page).__name__}</html>")
        page.set_string_custom_property(slice_report.DISPLAY_NAME, "Slice report")
        page.set_json_value_custom_property("points", [{"recall": 1.0}])


def test_the_reports_ui_typed_outputs_reach_the_executor_as_their_classes(tmp_path, monkeypatch):
    """Titled `system.HTML` in the spec, as the UIs need; TFX takes a title for an import path.
    (Inputs TFX reads as shipped: only the output's type fails.)"""
    parsed, received = _args(tmp_path, _vertex_examples())
    executor_input = json.loads(parsed[0].json_serialized_invocation_args)
    schema = compiler_utils.get_artifact_schema(slice_report.HTML)
    page = tmp_path / "report"
    executor_input["outputs"]["artifacts"] = {"report": {"artifacts": [{"uri": str(page), "type": {"instanceSchema": schema}}]}}
    parsed[0].json_serialized_invocation_args = json.dumps(executor_input)
    parsed[0].executor_class_path = f"{__name__}.ReportingExecutor"
    shipped = {k: v for k, v in compiler_utils.TITLE_TO_CLASS_PATH.items() if k not in slice_report.TITLE_TO_CLASS_PATH}
    monkeypatch.setattr(compiler_utils, "TITLE_TO_CLASS_PATH", shipped)
    with pytest.raises(ImportError, match="Could not import system.HTML"):
        kubeflow_v2_run_executor.main(parsed)
    entrypoint.main(parsed)
    assert page.read_text() == "<html>HTML</html>"
    output = json.loads((tmp_path / "kfp_outputs" / "output_metadata.json").read_text())
    metadata = output["artifacts"]["report"]["artifacts"][0]["metadata"]
    # What the backend records as the artifact's custom properties (converter.go toMLMDArtifact).
    assert metadata["display_name"] == "Slice report" and metadata["points"] == [{"recall": 1.0}]


class _Blob:
    def __init__(self, bucket, name, size):
        self.bucket, self.name, self.size = bucket, name, size

    def delete(self):
        self.bucket.objects.pop(self.name)


class _Bucket:
    """google.cloud.storage's bucket, as far as the marker cleanup uses it."""

    def __init__(self, objects):
        self.objects = dict(objects)

    def list_blobs(self, prefix):
        return [_Blob(self, name, size) for name, size in sorted(self.objects.items()) if name.startswith(prefix)]


class _Client:
    def __init__(self, buckets):
        self.buckets = buckets

    def bucket(self, name):
        return self.buckets[name]


def test_gcs_directory_markers_under_an_output_are_deleted_and_nothing_else():
    """TensorFlow writes a zero-byte `dir/` object per directory; the open-source launcher's
    download of the next task's inputs trips over them (kubeflow/pipelines#13476)."""
    bucket = _Bucket(
        {
            "root/Trainer/model/": 0,
            "root/Trainer/model/Format-Serving/": 0,
            "root/Trainer/model/Format-Serving/saved_model.pb": 1234,
            "root/Trainer/model/Format-Serving/variables/": 0,
            "root/Trainer/model/Format-Serving/variables/variables.index": 0,  # empty file, kept
            "root/Trainer/model_run/": 0,  # another output's marker, not under this one
        }
    )
    assert entrypoint.delete_directory_markers("gs://acme/root/Trainer/model", _Client({"acme": bucket})) == 3
    assert sorted(bucket.objects) == [
        "root/Trainer/model/Format-Serving/saved_model.pb",
        "root/Trainer/model/Format-Serving/variables/variables.index",
        "root/Trainer/model_run/",
    ]


# A process whose interpreter teardown aborts, as one with TensorFlow, TFX, Beam and pyarrow
# loaded now and then does after its work is done (SIGABRT, "terminate called without an
# active exception"), with an exit handler that records that it ran.
ABORTS_AT_TEARDOWN = """
import atexit, os, sys
from shopbusy.kubeflow import entrypoint

class AbortsAtTeardown:
    def __del__(self):
        os.abort()

held = AbortsAtTeardown()
atexit.register(lambda: open(sys.argv[1], "w").write("ran"))
print("outputs written", flush=True)
{ending}
"""


@pytest.mark.parametrize(
    "ending, code, stderr",
    [("sys.exit(0)", -6, ""), ("entrypoint.leave(None)", 0, ""), ("entrypoint.leave(3)", 3, ""), ("entrypoint.leave('bad flag')", 1, "bad flag\n")],
)
def test_a_finished_task_leaves_with_its_code_even_if_the_interpreter_would_abort_at_exit(tmp_path, ending, code, stderr):
    """The container's exit code is what the KFP launcher judges the task by: the task's own,
    after Python's exit handlers, never an abort in the C library's exit."""
    import subprocess
    import sys

    marker = tmp_path / "atexit-ran"
    script = ABORTS_AT_TEARDOWN.format(ending=ending)
    done = subprocess.run([sys.executable, "-c", script, str(marker)], capture_output=True, text=True, timeout=60)
    assert done.returncode == code, done.stderr
    assert done.stdout == "outputs written\n"
    assert marker.read_text() == "ran"
    assert done.stderr == stderr  # a SystemExit's text, and nothing else
