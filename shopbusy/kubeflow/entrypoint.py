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

What the backend adds, which TFX's entrypoint would fail on, is taken out before TFX sees it:

* From 2.5.0, with PUBLISH_LOGS=true (the default manifests), the driver adds an output
  `executor-logs` typed `system.Artifact` to every task (backend/src/v2/driver/driver.go
  provisionOutputs, 2.5.0 to 2.15.0 and master; kubeflow/pipelines#11809); TFX finds no class
  for it ("Could not import system.Artifact"). The launcher writes that artifact itself
  (component/launcher_v2.go getLogWriter), so every `system.*` output is dropped here.
* Every open-source version stores list and dict metadata wrapped, as `{"list": [...]}` and
  `{"struct": {...}}` (metadata/converter.go StructValueToMLMDValue, 2.0.5 to 2.15.0), and
  hands them back that way to the next task: they are unwrapped.
* An input artifact or parameter the inputs spec does not declare is dropped: TFX's executors
  take only their own (the spec's `up_to_date` parameter is for the task's trigger condition,
  kubeflow/up_to_date.py).

Input types are fixed from the inputs spec every compiled TFX task also receives
(--json_serialized_inputs_spec_args, pipeline spec 2.1): an input whose type is empty or a
`system.*` title takes the declared one.

TFX finds a custom artifact type's class by its schema title, which it takes to be the
class's import path (kubeflow_v2_entrypoint_utils._retrieve_class_path, 1.16). The slice
report's outputs are titled as the UIs need them, `system.HTML` and so on: their classes are
added to TFX's table of titles first (components/slice_report.py).

Last, the pipeline root. The backend ignores the spec's defaultPipelineRoot and uses the root
the run was created with, else the cluster's default, `minio://mlpipeline/v2/artifacts` on a
default install (driver/root_dag.go, config/env.go DefaultPipelineRoot): a run started or
cloned from the KFP UI gets that. The image's TensorFlow cannot open minio:// or s3://, so such
a task would fail deep inside TensorFlow; it stops here first, saying how to start the run.
On Vertex AI (and in local runs, which never use this module) TFX behaves as shipped.
"""

import atexit
import json
import os
import sys
from typing import NoReturn

from shopbusy.pipeline.config import GCS

KFP_SYSTEM_TITLE_PREFIX = "system."
TFX_ENTRYPOINT = "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"  # imported by main()
# Outputs TFX can write: the image's TensorFlow has the gs:// and local filesystems only.
WRITABLE_PREFIXES = (GCS, "/")
WRAPPED_METADATA = (("list", list), ("struct", dict))


class PipelineRootError(Exception):
    """The run's pipeline root is one the image cannot write to."""


def _needs_declared_type(artifact_type: dict) -> bool:
    if artifact_type.get("schemaTitle", "").startswith(KFP_SYSTEM_TITLE_PREFIX):
        return True
    return not artifact_type.get("schemaTitle") and not artifact_type.get("instanceSchema")


def _unwrapped(value):
    """A metadata value as the task that wrote it wrote it (converter.go wraps lists and dicts)."""
    if isinstance(value, dict) and len(value) == 1:
        [(key, inner)] = value.items()
        for wrapper, kind in WRAPPED_METADATA:
            if key == wrapper and isinstance(inner, kind):
                return inner
    return value


def check_pipeline_root(executor_input: dict) -> None:
    """Refuses, in one line, output URIs the image's TensorFlow cannot write."""
    for name, artifact_list in executor_input.get("outputs", {}).get("artifacts", {}).items():
        for artifact in artifact_list.get("artifacts", []):
            uri = artifact.get("uri", "")
            if not uri.startswith(WRITABLE_PREFIXES):
                scheme = uri.split("://")[0] + "://" if "://" in uri else repr(uri)
                raise PipelineRootError(
                    f"this run's pipeline root is {scheme} (output {name!r} at {uri}), which the image's TensorFlow "
                    "cannot write: start runs with `shopbusy kubeflow submit` or `schedule` (they pass the compiled "
                    "gs:// root), or set the run's pipeline root to gs://BUCKET/PATH when starting it from the UI"
                )


def readable_by_tfx(executor_input_json: str, inputs_spec_json: str) -> str:
    """The executor input as TFX's entrypoint can read it: backend-added outputs and undeclared
    inputs dropped, input types as declared, wrapped metadata unwrapped."""
    executor_input = json.loads(executor_input_json)
    check_pipeline_root(executor_input)
    inputs_spec = json.loads(inputs_spec_json or "{}")
    if "parameters" in inputs_spec:
        parameters = executor_input.get("inputs", {}).get("parameterValues", {})
        for name in [n for n in parameters if n not in inputs_spec["parameters"]]:
            del parameters[name]
    declared = inputs_spec.get("artifacts")
    inputs = executor_input.get("inputs", {}).get("artifacts", {})
    for name in list(inputs):
        if declared is not None and name not in declared:
            del inputs[name]
            continue
        for artifact in inputs[name].get("artifacts", []):
            if declared is not None and _needs_declared_type(artifact.get("type", {})):
                artifact["type"] = dict(declared[name]["artifactType"])
            artifact["metadata"] = {k: _unwrapped(v) for k, v in artifact.get("metadata", {}).items()}
    outputs = executor_input.get("outputs", {}).get("artifacts", {})
    for name in list(outputs):
        types = [a.get("type", {}).get("schemaTitle", "") for a in outputs[name].get("artifacts", [])]
        if any(title.startswith(KFP_SYSTEM_TITLE_PREFIX) for title in types):
            del outputs[name]  # the launcher's own (executor-logs): it writes them itself
    return json.dumps(executor_input)


def main(parsed_argv) -> None:
    """TFX's entrypoint main, on the parsed flags with the input types fixed."""
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

    from tfx.orchestration.kubeflow.v2 import compiler_utils

    from shopbusy.components import slice_report

    compiler_utils.TITLE_TO_CLASS_PATH.update(slice_report.TITLE_TO_CLASS_PATH)
    args, beam_args = parsed_argv
    try:
        args.json_serialized_invocation_args = readable_by_tfx(
            args.json_serialized_invocation_args, getattr(args, "json_serialized_inputs_spec_args", None)
        )
    except PipelineRootError as e:
        print(f"PipelineRootError: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
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


def leave(code) -> NoReturn:
    """Ends the task with `code` (a SystemExit's: None is 0, text is printed and is 1) after
    Python's exit handlers, skipping the C library's exit.

    An interpreter that has loaded TensorFlow, TFX, Beam and pyarrow now and then aborts in
    that exit, after the task's outputs are written ("terminate called without an active
    exception", SIGABRT: seen in this project's tests on a busy machine). The KFP launcher
    would fail the task on exit code 134: it runs the container command and, on any error
    of `command.Run()`, returns before the outputs are collected and publishes the execution
    FAILED (kubeflow/pipelines backend/src/v2/component/launcher_v2.go, `execute` and
    `Execute`, read at commit 0045064; not checked at older tags). run-local never met it:
    its pods leave with os._exit already (pods.py). The CLI leaves the same way
    (cli/__init__.py entry_point)."""
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()  # noqa: SLF001  logging's flush among them
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    from absl import app
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

    # As TFX's own `__main__`: absl runs main on the flags TFX's parser reads, and ends
    # with SystemExit; the task then leaves as leave() says.
    try:
        app.run(main, flags_parser=kubeflow_v2_run_executor._parse_flags)  # noqa: SLF001
    except SystemExit as ending:
        leave(ending.code)
