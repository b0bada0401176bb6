"""The container entrypoint of every TFX task in a compiled shopbusy spec: TFX's own
(tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor), after making the
executor input the open-source Kubeflow Pipelines backend sends readable to it.

TFX 1.16's entrypoint was written for Vertex AI, which sends every input artifact with the
type the spec declares. The open-source KFP 2.x driver does not:

* It reads input artifacts back from its ML Metadata with the schema left empty
  (kubeflow/pipelines backend/src/v2/metadata/client.go, GetOutputArtifactsByExecutionId:
  `Schema: "" // TODO(Bobgy): figure out how to get schema`) and sends them as
  `type: {instanceSchema: ""}` (OutputArtifact.ToRuntimeArtifact). TFX then fails in
  kubeflow_v2_entrypoint_utils._retrieve_class_path: yaml.safe_load("") is None.
* Artifacts recorded under KFP's own types arrive as `system.*` schema titles
  (`system.Dataset` for tfx.Examples, `system.Model`, ...), which TFX's TITLE_TO_CLASS_PATH
  does not know (reported by sky-uk/kfp-operator, provider-service/kfp/tfx-patch, for TFX
  1.15-1.17; tensorflow/tfx#7768).

A third incompatibility is in what the task leaves behind. TensorFlow's GCS filesystem
writes a zero-byte `dir/` object for every directory it creates (TFX creates many, e.g. the
model's Format-Serving/), and the open-source launcher downloads every input artifact of the
next task to a local path object by object (component/launcher_v2.go downloadArtifacts):
a `dir/` object becomes a file where a directory must go, and the download fails
(kubeflow/pipelines#13476; sky-uk/kfp-operator deletes the markers for the same reason).
GCS has no directories, so the markers carry nothing: after the executor, they are deleted
under each gs:// output.

The input types are fixed this way: every compiled TFX task also receives its inputs spec
(--json_serialized_inputs_spec_args, pipeline spec 2.1), which declares each input's TFX
type; an input whose type is empty or a `system.*` title takes the declared one. Nothing else
changes, so on Vertex AI (and in local runs, which never use this module) TFX behaves as shipped.
"""

import json


KFP_SYSTEM_TITLE_PREFIX = "system."
GCS = "gs://"


def _needs_declared_type(artifact_type: dict) -> bool:
    if artifact_type.get("schemaTitle", "").startswith(KFP_SYSTEM_TITLE_PREFIX):
        return True
    return not artifact_type.get("schemaTitle") and not artifact_type.get("instanceSchema")


def with_declared_input_types(executor_input_json: str, inputs_spec_json: str) -> str:
    """The executor input with each untyped or `system.*`-typed input artifact given the type
    its inputs spec declares."""
    executor_input = json.loads(executor_input_json)
    declared = json.loads(inputs_spec_json or "{}").get("artifacts", {})
    for name, artifact_list in executor_input.get("inputs", {}).get("artifacts", {}).items():
        if name not in declared:
            continue
        for artifact in artifact_list.get("artifacts", []):
            if _needs_declared_type(artifact.get("type", {})):
                artifact["type"] = dict(declared[name]["artifactType"])
    return json.dumps(executor_input)


def main(parsed_argv) -> None:
    """TFX's entrypoint main, on the parsed flags with the input types fixed."""
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

    args, beam_args = parsed_argv
    args.json_serialized_invocation_args = with_declared_input_types(
        args.json_serialized_invocation_args, getattr(args, "json_serialized_inputs_spec_args", None)
    )
    kubeflow_v2_run_executor.main((args, beam_args))
    outputs = json.loads(args.json_serialized_invocation_args).get("outputs", {}).get("artifacts", {})
    for artifact_list in outputs.values():
        for artifact in artifact_list.get("artifacts", []):
            if artifact.get("uri", "").startswith(GCS):
                delete_directory_markers(artifact["uri"])


def delete_directory_markers(uri: str, client=None) -> int:
    """Deletes the zero-byte `name/` objects under a gs:// URI; returns how many."""
    if client is None:
        from google.cloud import storage

        client = storage.Client()
    bucket_name, _, prefix = uri[len(GCS) :].partition("/")
    prefix = prefix.rstrip("/") + "/"
    bucket = client.bucket(bucket_name)
    markers = [blob for blob in bucket.list_blobs(prefix=prefix) if blob.name.endswith("/") and blob.size == 0]
    for blob in markers:
        blob.delete()
    return len(markers)


if __name__ == "__main__":
    from absl import app
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

    # As TFX's own `__main__`: absl runs main on the flags TFX's parser reads.
    app.run(main, flags_parser=kubeflow_v2_run_executor._parse_flags)  # noqa: SLF001
