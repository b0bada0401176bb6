"""`shopbusy kubeflow run-local`: executes a compiled spec on this machine through the contract
a cluster uses, so that a spec is checked before it is uploaded.

A conformance check, not a second orchestrator: each container task runs its own `command` +
`args` as a process of its own (forked from an interpreter that has imported the image's
entrypoints once: pods.py), its placeholders filled by kfp.local's helpers, with the executor
input the chosen backend builds; outputs are read back from the executor output and
recorded in a local ML Metadata store, from which later tasks, runs and caches read them.
Every behaviour below cites the backend's file: open-source KFP's in kubeflow/pipelines
backend/src/v2/ at the tags named (KFP_SHAPES for what differs between versions), Vertex AI's
as TFX's own v2 tests assume it (tfx/orchestration/kubeflow/v2/container/testdata/). Paths
inside the image are read from this checkout and gs:// maps to DIR/gcs/ (launcher_v2.go
LocalPathForURI).
"""

import ast
import dataclasses
import datetime
import hashlib
import itertools
import json
import os
import re
import sys
import time
from typing import Dict, List, Optional

import yaml

from shopbusy.kubeflow import entrypoint, pods
from shopbusy.kubeflow import spec as compiled_spec
from shopbusy.kubeflow.errors import KubeflowError
from shopbusy.kubeflow.runner import DATA_ROOT_PARAMETER, IMAGE_PROJECT_ROOT, UP_TO_DATE_TASK
from shopbusy.kubeflow.up_to_date import UP_TO_DATE
from shopbusy.pipeline import config, nodes

LAUNCHERS = ("kfp", "vertex")
PROJECT_ROOT = os.path.dirname(config.PACKAGE_ROOT)  # the Docker build context
# How Vertex AI names an artifact (TFX hashes it to an id and back).
VERTEX_ARTIFACT_NAME = "projects/local/locations/local/metadataStores/default/artifacts/{}"
EXECUTION_TYPE = "system.ContainerExecution"  # as the KFP launcher records executions
RUN_CONTEXT_TYPE, PIPELINE_CONTEXT_TYPE = "system.PipelineRun", "system.Pipeline"
ANOMALY_GATE_TASK, PUSHER_TASK = nodes.ANOMALY_GATE, nodes.PUSHER
EXECUTOR_LOGS = "executor-logs"


@dataclasses.dataclass(frozen=True)
class KfpShape:
    """What one range of open-source KFP versions puts in a task's executor input
    (kubeflow/pipelines backend/src/v2/driver/driver.go provisionOutputs at each tag)."""

    versions: str
    # 2.5.0+: with PUBLISH_LOGS=true (the default manifests) an output `executor-logs` typed
    # system.Artifact, which the launcher fills with the task's log (launcher_v2.go getLogWriter).
    executor_logs: bool
    # 2.15.0+: each output artifact carries `name` = its output key ("Required by Pythonic
    # artifacts"); before, the name is empty.
    output_names: bool
    # 2.15.0+: outputFile is <LocalPathForURI(task root)>/output_metadata.json, e.g.
    # /gcs/BUCKET/.../output_metadata.json for a gs:// root (launcher_v2.go LocalPathForURI);
    # before, and for schemes it does not know, /tmp/kfp_outputs/output_metadata.json.
    output_file_under_task_root: bool


KFP_SHAPES = {
    "2.0": KfpShape("2.0.5-2.4.1", executor_logs=False, output_names=False, output_file_under_task_root=False),
    "2.5": KfpShape("2.5.0-2.14.x", executor_logs=True, output_names=False, output_file_under_task_root=False),
    "2.15": KfpShape("2.15.0 and later (master)", executor_logs=True, output_names=True, output_file_under_task_root=True),
}
NEWEST_KFP_SHAPE = "2.15"
# launcher_v2.go LocalPathForURI: the schemes a pod mounts under a local path.
LOCAL_PATH_PREFIXES = {config.GCS: "/gcs/", "minio://": "/minio/", "s3://": "/s3/"}
_ERROR_LINE = re.compile(r"^(\w+\.)*\w*(Error|Exception)\b.*")
MESSAGE_LINES, _INDENT = 20, "\n      "  # of a failed task's exception, as run-local prints it


@dataclasses.dataclass
class TaskResult:
    name: str
    state: str  # COMPLETE, CACHED, SKIPPED or FAILED
    seconds: float = 0.0
    outputs: Dict[str, List[int]] = dataclasses.field(default_factory=dict)  # output -> artifact ids
    parameters: Dict[str, object] = dataclasses.field(default_factory=dict)  # output parameters
    error: str = ""
    log: str = ""


@dataclasses.dataclass
class LocalRun:
    run_id: str
    launcher: str
    pipeline_root: str
    metadata_path: str
    tasks: Dict[str, TaskResult]
    pushed_version: str = ""  # the version the Pusher pushed, "" if none
    already_served: str = ""  # the served version the Pusher found was this very model
    up_to_date: bool = False  # the UpToDate task found the served model made from this data and configuration

    @property
    def failed(self) -> Optional[TaskResult]:
        return next((t for t in self.tasks.values() if t.state == "FAILED"), None)

    @property
    def blessed(self) -> bool:
        pusher = self.tasks.get(PUSHER_TASK)
        return bool(pusher and pusher.state in ("COMPLETE", "CACHED"))

    @property
    def pushed(self) -> bool:
        return bool(self.pushed_version)

    @property
    def verdict(self) -> str:
        if self.up_to_date:
            return "up to date: the served model was made from this data and configuration; every task skipped"
        if self.pushed:
            return f"pushed as version {self.pushed_version}"
        if self.already_served:
            return f"blessed; already served as version {self.already_served}, nothing pushed"
        return "not blessed, nothing pushed"


def run_local(
    package: str,
    workdir: str,
    data: Optional[str] = None,
    launcher: str = "kfp",
    backend_version: str = NEWEST_KFP_SHAPE,
    echo=print,
    pipeline_root: Optional[str] = None,
) -> LocalRun:
    """Runs every task of the spec in `package`; returns what each did. `pipeline_root` is the
    run's root instead of the spec's (the backend ignores the spec's defaultPipelineRoot when
    the run names one: driver/root_dag.go)."""
    if launcher not in LAUNCHERS:
        raise KubeflowError(f"--launcher {launcher!r}: one of {', '.join(LAUNCHERS)}")
    if backend_version not in KFP_SHAPES:
        raise KubeflowError(f"--backend-version {backend_version!r}: one of {', '.join(sorted(KFP_SHAPES))}")
    _, spec = compiled_spec.load(package)
    compiled_spec.check(spec, launcher)  # as the API server checks it when the run is created
    workdir = os.path.abspath(workdir)
    os.makedirs(workdir, exist_ok=True)
    paths = _LocalPaths(workdir)
    remote_root = pipeline_root or spec.get("defaultPipelineRoot") or ""
    root = paths.localize(remote_root)
    if not root:
        raise KubeflowError(f"{package}: compiled without a pipeline root (shopbusy kubeflow compile --pipeline-root)")
    parameters = {
        name: paths.localize(definition.get("defaultValue"))
        for name, definition in spec["root"].get("inputDefinitions", {}).get("parameters", {}).items()
    }
    if data is not None:
        parameters[DATA_ROOT_PARAMETER] = os.path.abspath(data)
    run_id = datetime.datetime.now().strftime("run-local-%Y%m%d-%H%M%S-%f")
    store = _Store(os.path.join(workdir, config.METADATA_FILE), spec["pipelineInfo"]["name"], run_id)
    backend = _Backend.of(launcher, store, KFP_SHAPES[backend_version], remote_root)
    run = LocalRun(run_id, launcher, root, store.path, {})
    pods.preload(_modules_the_tasks_import(spec))
    shape = f", backend {KFP_SHAPES[backend_version].versions}" if launcher == "kfp" else ""
    echo(f"run {run_id} of {package} ({launcher} launcher{shape}), pipeline root {root}")
    for name in _dag_order(spec["root"]["dag"]["tasks"]):
        task = spec["root"]["dag"]["tasks"][name]
        upstream = [run.tasks[d] for d in task.get("dependentTasks", [])]
        if any(u.state == "SKIPPED" for u in upstream):
            # As the backend: a task after a skipped one never starts, its driver included
            # (argocompiler/dag.go `depends`: "X.Succeeded", and Argo omits it).
            run.tasks[name] = TaskResult(name, "SKIPPED")
            continue
        started = time.monotonic()
        try:
            result = _run_task(spec, name, task, run, backend, store, paths, parameters)
        except KubeflowError as e:
            result = TaskResult(name, "FAILED", error=str(e))
        result.seconds = time.monotonic() - started
        run.tasks[name] = result
        echo(f"  {name}: {result.state.lower()} ({result.seconds:.0f} s){': ' + result.error if result.error else ''}")
        if result.state == "FAILED":
            break
    check = run.tasks.get(UP_TO_DATE_TASK)
    run.up_to_date = bool(check and check.parameters.get(UP_TO_DATE) == "true")
    pusher = run.tasks.get(PUSHER_TASK)
    for artifact in store.artifacts(pusher.outputs.get("pushed_model", []) if pusher else []):
        properties = store.metadata_of(artifact)
        if properties.get("pushed") == 1:
            run.pushed_version = str(properties.get("pushed_version", ""))
        run.already_served = str(properties.get("already_served", ""))
    return run


class _LocalPaths:
    """Where image paths and remote URIs live on this machine."""

    def __init__(self, workdir: str):
        self.workdir = workdir

    def localize(self, value):
        if isinstance(value, str):
            value = value.replace(config.GCS, os.path.join(self.workdir, "gcs") + "/")
            if value == IMAGE_PROJECT_ROOT or value.startswith(IMAGE_PROJECT_ROOT + "/"):
                value = PROJECT_ROOT + value[len(IMAGE_PROJECT_ROOT) :]
        return value


def _modules_the_tasks_import(spec: dict) -> List[str]:
    """What each container task imports first: the `python -m` module, TFX's v2 executor entry
    and the executor class the task names (`--executor_class_path`)."""
    modules = []
    for executor in spec["deploymentSpec"]["executors"].values():
        container = executor.get("container", {})
        command, args = list(container.get("command", [])), list(container.get("args", []))
        if command[:2] == ["python", "-m"] and len(command) > 2:
            modules.append(command[2])
        if "--executor_class_path" in args[:-1]:
            modules.append(args[args.index("--executor_class_path") + 1].rpartition(".")[0])
    if modules:
        modules.append(entrypoint.TFX_ENTRYPOINT)
    return modules


def _dag_order(tasks: dict) -> List[str]:
    order, placed = [], set()
    while len(order) < len(tasks):
        ready = sorted(n for n, t in tasks.items() if n not in placed and set(t.get("dependentTasks", [])) <= placed)
        if not ready:
            raise KubeflowError("the spec's tasks depend on each other in a cycle")
        order += ready
        placed.update(ready)
    return order


def _run_task(spec, name, task, run, backend, store, paths, parameters) -> TaskResult:
    component = spec["components"][task["componentRef"]["name"]]
    executor = spec["deploymentSpec"]["executors"][component["executorLabel"]]
    inputs = {
        "parameterValues": _input_parameters(task, parameters, paths, run),
        "artifacts": {
            key: {"artifacts": [backend.input_artifact(a, component, key) for a in _upstream(run, store, source)]}
            for key, source in task.get("inputs", {}).get("artifacts", {}).items()
        },
    }
    if "resolver" in executor:
        return backend.resolve(name, executor["resolver"], inputs)
    events = backend.input_events(name, inputs)
    if "container" not in executor:
        raise KubeflowError(f"task {name}: executor kind {sorted(executor)} is not supported by run-local")
    condition = task.get("triggerPolicy", {}).get("condition")
    if condition and not evaluate_condition(condition, inputs):
        store.record_execution(name, "CANCELED", inputs, events, {}, cache_key="")
        return TaskResult(name, "SKIPPED")

    container = executor["container"]
    pod = os.path.join(paths.workdir, "pods", run.run_id, name)  # the task's pod filesystem
    os.makedirs(pod, exist_ok=True)
    task_root = backend.task_root(run.pipeline_root, spec["pipelineInfo"]["name"], run.run_id, name)
    outputs = {
        "artifacts": {
            key: {"artifacts": [backend.output_artifact(key, f"{task_root}/{key}", artifact_type)]}
            for key, artifact_type in backend.output_types(component).items()
        },
        # driver.go provisionOutputs: each output parameter's file in the pod, all versions.
        "parameters": {
            key: {"outputFile": os.path.join(pod, "tmp", "kfp", "outputs", key)}
            for key in component.get("outputDefinitions", {}).get("parameters", {})
        },
        "outputFile": backend.output_file(pod, backend.task_root(backend.remote_root, spec["pipelineInfo"]["name"], run.run_id, name)),
    }
    executor_input = {"inputs": inputs, "outputs": outputs}
    lifecycle = container.get("lifecycle", {}).get("preCacheCheck")
    if lifecycle and backend.runs_drivers:
        error, log = _run_process(name, lifecycle["command"], lifecycle["args"], executor_input, pod, run, "driver")
        if error:
            store.record_execution(name, "FAILED", inputs, events, {}, cache_key="")
            return TaskResult(name, "FAILED", error=error, log=log)
        inputs["parameterValues"].update(_read_json(outputs["outputFile"]).get("parameterValues", {}))

    cache_key = cache_fingerprint(executor_input, container, component) if task.get("cachingOptions", {}).get("enableCache") else ""
    cached = store.cached_outputs(cache_key) if cache_key else None
    if cached is not None:
        store.record_execution(name, "CACHED", inputs, events, cached, cache_key)
        return TaskResult(name, "CACHED", outputs={k: [a.id for a in v] for k, v in cached.items()})

    error, log = _run_process(name, container["command"], container["args"], executor_input, pod, run, "executor")
    if error:
        store.record_execution(name, "FAILED", inputs, events, {}, cache_key)
        return TaskResult(name, "FAILED", error=error, log=log)
    backend.write_logs(outputs["artifacts"], log)
    produced = _merge_executor_output(outputs["artifacts"], _read_json(outputs["outputFile"]))
    recorded = {key: [store.record_artifact(key, artifact, backend.wraps_metadata)] for key, artifact in produced.items()}
    try:
        parameters = _output_parameters(component, outputs["parameters"])
    except KubeflowError as e:
        store.record_execution(name, "FAILED", inputs, events, {}, cache_key)
        return TaskResult(name, "FAILED", error=str(e), log=log)
    store.record_execution(name, "COMPLETE", inputs, events, recorded, cache_key, parameters)
    return TaskResult(name, "COMPLETE", outputs={k: [a.id for a in v] for k, v in recorded.items()}, parameters=parameters, log=log)


def _output_parameters(component, files) -> dict:
    """launcher_v2.go collectOutputParameters: each declared parameter read from its file,
    as text for STRING (metadata/converter.go TextToPbValue); a missing file fails the task."""
    values = {}
    for key, definition in component.get("outputDefinitions", {}).get("parameters", {}).items():
        path = files[key]["outputFile"]
        if not os.path.exists(path):
            raise KubeflowError(f"output parameter {key!r}: the task wrote no {path}")
        with open(path) as f:
            text = f.read()
        kind = definition.get("parameterType", "STRING")
        values[key] = text if kind == "STRING" else json.loads(text)
    return values


def _input_parameters(task, pipeline_parameters, paths, run) -> dict:
    values = {}
    for key, source in task.get("inputs", {}).get("parameters", {}).items():
        if "runtimeValue" in source:
            values[key] = paths.localize(source["runtimeValue"]["constant"])
        elif "componentInputParameter" in source:
            values[key] = pipeline_parameters[source["componentInputParameter"]]
        elif "taskOutputParameter" in source:
            producer = source["taskOutputParameter"]
            values[key] = run.tasks[producer["producerTask"]].parameters[producer["outputParameterKey"]]
        else:
            raise KubeflowError(f"parameter {key}: source {sorted(source)} is not supported by run-local")
    return values


def _upstream(run, store, source):
    producer = source["taskOutputArtifact"]
    result = run.tasks[producer["producerTask"]]
    return store.artifacts(result.outputs.get(producer["outputArtifactKey"], []))


def _run_process(name, command, args, executor_input, pod, run, what):
    """Runs one container command as the pod would: its placeholders filled, the image's
    environment (TF_USE_LEGACY_KERAS, shopbusy/kubeflow/Dockerfile), `python` the project's."""
    from kfp.local import placeholder_utils

    argv = placeholder_utils.replace_placeholders(
        list(command) + list(args),
        _canonical(executor_input),
        pipeline_resource_name=run.run_id,
        task_resource_name=name,
        pipeline_root=run.pipeline_root,
    )
    if argv[0] == "python":
        argv[0] = sys.executable
    log_path = os.path.join(pod, f"{what}.log")
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", PYTHONUNBUFFERED="1")
    code = pods.run(argv, pod, env, log_path)
    if code == 0:
        return "", log_path
    with open(log_path) as log:
        raw = [line.rstrip() for line in log if line.strip()]
    lines = [line.strip() for line in raw]
    errors = [i for i, line in enumerate(lines) if _ERROR_LINE.match(line)]
    cause = (lines or ["no output"])[-1:]
    if errors:
        # The last exception, with the indented lines that go on its message: the AnomalyGate's
        # one line per column, as the pod's log in the KFP UI shows them.
        more = itertools.takewhile(lambda line: line[:1].isspace(), raw[errors[-1] + 1 : errors[-1] + MESSAGE_LINES])
        cause = [lines[errors[-1]], *(line.strip() for line in more)]
    return f"{what} exited with {code}: {_INDENT.join(cause)} (log: {log_path})", log_path


def _canonical(executor_input: dict) -> dict:
    """The executor input as the backend serializes the ExecutorInput proto."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    message = json_format.ParseDict(executor_input, pipeline_spec_pb2.ExecutorInput())
    return json_format.MessageToDict(message)


def _read_json(path: str) -> dict:
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def _merge_executor_output(declared: dict, executor_output: dict) -> dict:
    """KFP's launcher (launcher_v2.go mergeRuntimeArtifacts): the executor output's URI and
    metadata win over what the driver provisioned."""
    produced = {}
    for key, artifact_list in declared.items():
        artifact = dict(artifact_list["artifacts"][0])
        written = executor_output.get("artifacts", {}).get(key, {}).get("artifacts", [])
        if written:
            if written[0].get("uri"):
                artifact["uri"] = written[0]["uri"]
            artifact["metadata"] = {**artifact.get("metadata", {}), **written[0].get("metadata", {})}
        produced[key] = artifact
    return produced


def cache_key(executor_input: dict, container: dict, component: Optional[dict] = None) -> dict:
    """KFP's cache key for a task (cacheutils/cache.go GenerateCacheKey, 2.0.5-2.15.0), as
    protojson writes the CacheKey proto (api/v2alpha1/cache_key.proto): empty fields left out."""
    key = {
        "inputArtifactNames": {
            k: {"artifactNames": [a.get("name", "") for a in v["artifacts"]]}
            for k, v in executor_input["inputs"].get("artifacts", {}).items()
        },
        "inputParameterValues": dict(executor_input["inputs"].get("parameterValues", {})),
        "outputArtifactsSpec": {
            k: {
                field: value
                for field, value in (("name", v["artifacts"][0].get("name")), ("type", v["artifacts"][0].get("type")),
                                     ("metadata", v["artifacts"][0].get("metadata")))
                if value
            }
            for k, v in executor_input["outputs"].get("artifacts", {}).items()
            if v["artifacts"]
        },
        "outputParametersSpec": {
            k: d.get("parameterType", "")
            for k, d in (component or {}).get("outputDefinitions", {}).get("parameters", {}).items()
        },
        "containerSpec": {"image": container.get("image", ""), "cmdArgs": container["command"] + container["args"]},
    }  # fmt: skip
    return {field: value for field, value in key.items() if value}


def _go_json(value) -> str:
    """What Go's encoding/json writes for a value unmarshalled from JSON: keys sorted, no
    spaces, whole numbers without a fraction, <, > and & escaped, other text as UTF-8."""

    def go(v):
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: go(x) for k, x in v.items()}
        if isinstance(v, list):
            return [go(x) for x in v]
        return v

    text = json.dumps(go(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for character, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(character, escape)
    return text


def fingerprint(key: dict) -> str:
    """cache.go GenerateFingerPrint: sha256 of the key as protojson, re-marshalled by encoding/json."""
    return hashlib.sha256(_go_json(key).encode()).hexdigest()


def cache_fingerprint(executor_input: dict, container: dict, component: Optional[dict] = None) -> str:
    return fingerprint(cache_key(executor_input, container, component))


_CONDITION_VALUE = re.compile(
    r"inputs\.artifacts\['([^']+)'\]\.artifacts\[(\d+)\]\.metadata\['([^']+)'\]|inputs\.parameter_values\['([^']+)'\]"
)
_CONDITION_NODES = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.Compare, ast.Constant,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE,
)  # fmt: skip


def evaluate_condition(condition: str, inputs: dict) -> bool:
    """A trigger condition, as KFP's driver evaluates it (CEL over the task's executor input):
    comparisons of input artifact metadata and parameters, joined by &&, || and !. A key the
    task does not have fails the task, as it fails the driver."""

    def value(match):
        artifact, index, key, parameter = match.groups()
        try:
            if parameter:
                return repr(inputs["parameterValues"][parameter])
            return repr(inputs["artifacts"][artifact]["artifacts"][int(index)]["metadata"][key])
        except (KeyError, IndexError):
            raise KubeflowError(f"condition {condition!r}: no such input value {match.group(0)!r}") from None

    python = _CONDITION_VALUE.sub(value, condition)
    python = python.replace("&&", " and ").replace("||", " or ")
    python = re.sub(r"!(?!=)", " not ", python)
    tree = ast.parse(python, mode="eval")
    if not all(isinstance(node, _CONDITION_NODES) for node in ast.walk(tree)):
        raise KubeflowError(f"condition {condition!r} is beyond what run-local evaluates")
    return bool(eval(compile(tree, "<condition>", "eval")))  # noqa: S307 - only literals and comparisons


class _Backend:
    """What differs between the two launchers."""

    runs_drivers = False
    wraps_metadata = False

    def __init__(self, store, shape: KfpShape, remote_root: str):
        self.store, self.shape, self.remote_root = store, shape, remote_root

    @staticmethod
    def of(launcher: str, store, shape: KfpShape, remote_root: str) -> "_Backend":
        return {"kfp": _KfpBackend, "vertex": _VertexBackend}[launcher](store, shape, remote_root)

    def output_types(self, component) -> dict:
        return {k: d["artifactType"] for k, d in component.get("outputDefinitions", {}).get("artifacts", {}).items()}

    def output_artifact(self, key, uri, artifact_type) -> dict:
        return {"name": key, "uri": uri, "type": artifact_type, "metadata": {}}

    def write_logs(self, outputs, log_path) -> None:
        """Nothing: only open-source KFP's launcher writes a log artifact."""

    def input_events(self, name, inputs: dict) -> dict:
        """{artifact id: [(key, index), ...]}: one INPUT event per artifact, naming each key it
        was given under, as TFX records it (tfx/orchestration/portable/mlmd/execution_lib.py
        _create_artifact_and_event_pairs, event_lib.add_event_path; TFX 1.16.0)."""
        events = {}
        for key, artifact_list in inputs["artifacts"].items():
            for index, artifact in enumerate(artifact_list["artifacts"]):
                events.setdefault(_artifact_id(artifact), []).append((key, index))
        return events


class _KfpBackend(_Backend):
    # Lists and dicts in an artifact's metadata are stored as {"list": ...} and {"struct": ...}
    # and handed to later tasks so (metadata/converter.go StructValueToMLMDValue, 2.0.5-2.15.0).
    wraps_metadata = True

    def input_artifact(self, artifact, component, key) -> dict:
        return {
            "name": str(artifact.id),
            "uri": artifact.uri,
            "metadata": self.store.metadata_of(artifact),
            "type": {"instanceSchema": ""},  # client.go: Schema "" (TODO(Bobgy))
        }

    def output_types(self, component) -> dict:
        types = super().output_types(component)
        if self.shape.executor_logs:
            types[EXECUTOR_LOGS] = {"schemaTitle": "system.Artifact"}
        return types

    def output_artifact(self, key, uri, artifact_type) -> dict:
        return {"name": key if self.shape.output_names else "", "uri": uri, "type": artifact_type, "metadata": {}}

    def write_logs(self, outputs, log_path) -> None:
        """launcher_v2.go getLogWriter: the task's output, copied into the executor-logs URI."""
        for artifact in outputs.get(EXECUTOR_LOGS, {}).get("artifacts", []):
            if artifact["uri"].startswith("/"):
                os.makedirs(os.path.dirname(artifact["uri"]), exist_ok=True)
                with open(log_path, "rb") as source, open(artifact["uri"], "wb") as target:
                    target.write(source.read())

    def input_events(self, name, inputs: dict) -> dict:
        """The driver puts one INPUT event per input key and artifact (metadata/client.go
        CreateExecution, 2.0.5-2.15.0): an artifact under two keys is refused by ML Metadata
        (AlreadyExists), and so the task fails before its pod starts."""
        events = super().input_events(name, inputs)
        for artifact_id, keys in events.items():
            if len(keys) > 1:
                raise KubeflowError(
                    f"task {name}: artifact {artifact_id} is its input under {', '.join(k for k, _ in keys)}; the KFP "
                    "driver records one event per key and ML Metadata refuses the second (AlreadyExists)"
                )
        return events

    def task_root(self, root, pipeline, run_id, task) -> str:
        """<root>/<pipeline>/<run>/<task>/<salt> (driver.go provisionOutputs, root_dag.go)."""
        salt = hashlib.sha256(f"{run_id}/{task}".encode()).hexdigest()[:8]
        return f"{root.rstrip('/')}/{pipeline}/{run_id}/{task}/{salt}"

    def output_file(self, pod, remote_task_root) -> str:
        # launcher_v2.go OutputMetadataFilepath, or from 2.15 the task root's local path in the pod.
        if self.shape.output_file_under_task_root:
            for prefix, local in LOCAL_PATH_PREFIXES.items():
                if remote_task_root.startswith(prefix):
                    return os.path.join(pod, (local + remote_task_root[len(prefix) :]).lstrip("/"), "output_metadata.json")
        return os.path.join(pod, "tmp", "kfp_outputs", "output_metadata.json")

    def resolve(self, name, resolver, inputs) -> TaskResult:
        raise KubeflowError(
            f"task {name}: resolver executors not implemented on open-source Kubeflow Pipelines "
            "(backend/src/v2/compiler/argocompiler/dag.go); compile with --target kfp"
        )


class _VertexBackend(_Backend):
    runs_drivers = True

    def input_artifact(self, artifact, component, key) -> dict:
        return {
            "name": VERTEX_ARTIFACT_NAME.format(artifact.id),
            "uri": artifact.uri,
            "metadata": self.store.metadata_of(artifact),
            "type": component["inputDefinitions"]["artifacts"][key]["artifactType"],
        }

    def task_root(self, root, pipeline, run_id, task) -> str:
        return f"{root.rstrip('/')}/{run_id}/{task}"

    def output_file(self, pod, remote_task_root) -> str:
        return os.path.join(_LocalPaths(os.path.dirname(self.store.path)).localize(remote_task_root), "executor_output.json")

    def resolve(self, name, resolver, inputs) -> TaskResult:
        """Each query's newest LIVE match: `schema_title="T" AND state=LIVE AND name="N" AND
        metadata.K.number_value=V`, its placeholders filled from the task's inputs."""
        from kfp.local import placeholder_utils

        outputs = {}
        for key, query in resolver["outputArtifactQueries"].items():
            text = placeholder_utils.resolve_io_placeholders(_canonical({"inputs": inputs}), query["filter"])
            matches = self.store.query(_parse_filter(text, VERTEX_ARTIFACT_NAME))
            outputs[key] = [matches[0]] if matches else []
        return TaskResult(name, "COMPLETE", outputs={k: [a.id for a in v] for k, v in outputs.items()})


def _parse_filter(text: str, name_format: str) -> dict:
    wanted = {}
    for clause in text.split(" AND "):
        field, _, value = clause.strip().partition("=")
        value = value.strip().strip('"')
        if field == "schema_title":
            wanted["type"] = value
        elif field == "state":
            wanted["state"] = value
        elif field == "name":
            prefix = name_format.format("")
            wanted["id"] = int(value[len(prefix) :]) if value.startswith(prefix) and value[len(prefix) :].isdigit() else -1
        elif field.startswith("metadata.") and field.endswith(".number_value"):
            wanted.setdefault("metadata", {})[field[len("metadata.") : -len(".number_value")]] = float(value)
        else:
            raise KubeflowError(f"resolver filter clause {clause!r} is beyond what run-local answers")
    return wanted


class _Store:
    """The run's ML Metadata: artifacts typed by their schema title, every metadata field a
    custom property (converter.go toMLMDArtifact), executions per task with their cache key."""

    def __init__(self, path: str, pipeline: str, run_id: str):
        from ml_metadata import metadata_store
        from ml_metadata.proto import metadata_store_pb2 as mlmd

        self.mlmd, self.path = mlmd, path
        connection = mlmd.ConnectionConfig()
        connection.sqlite.filename_uri = path
        connection.sqlite.connection_mode = mlmd.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
        self.store = metadata_store.MetadataStore(connection)
        self.execution_type = self.store.put_execution_type(mlmd.ExecutionType(name=EXECUTION_TYPE))
        self.contexts = [self._context(PIPELINE_CONTEXT_TYPE, pipeline), self._context(RUN_CONTEXT_TYPE, run_id)]

    def _context(self, type_name: str, name: str) -> int:
        type_id = self.store.put_context_type(self.mlmd.ContextType(name=type_name))
        existing = self.store.get_context_by_type_and_name(type_name, name)
        if existing:
            return existing.id
        return self.store.put_contexts([self.mlmd.Context(type_id=type_id, name=name)])[0]

    def record_artifact(self, key: str, runtime_artifact: dict, wrap: bool = False):
        schema = runtime_artifact["type"]
        title = schema.get("schemaTitle") or (yaml.safe_load(schema.get("instanceSchema") or "{}") or {}).get("title")
        type_id = self.store.put_artifact_type(self.mlmd.ArtifactType(name=title))
        artifact = self.mlmd.Artifact(type_id=type_id, uri=runtime_artifact["uri"], state=self.mlmd.Artifact.LIVE)
        for name, value in {"display_name": key, **runtime_artifact.get("metadata", {})}.items():
            _set_value(artifact.custom_properties[name], value, wrap)
        [artifact_id] = self.store.put_artifacts([artifact])
        return self.store.get_artifacts_by_id([artifact_id])[0]

    def record_execution(
        self, task: str, state: str, inputs: dict, input_events: dict, outputs: dict, cache_key: str, parameters=None
    ) -> None:
        execution = self.mlmd.Execution(
            type_id=self.execution_type, last_known_state=getattr(self.mlmd.Execution, state)
        )
        execution.custom_properties["task_name"].string_value = task
        # The task's parameters, as KFP's driver records them (client.go, keyInputs).
        execution.custom_properties["inputs"].struct_value.update(inputs["parameterValues"])
        execution.custom_properties["cache_fingerprint"].string_value = cache_key
        if parameters:  # the launcher's output parameters (client.go PublishExecution, keyOutputs)
            execution.custom_properties["outputs"].struct_value.update(parameters)
        output_events = {}
        for key, artifacts in outputs.items():
            for index, artifact in enumerate(artifacts):
                output_events.setdefault(artifact.id, []).append((key, index))
        artifacts_and_events = []
        for kind, events in ((self.mlmd.Event.INPUT, input_events), (self.mlmd.Event.OUTPUT, output_events)):
            for artifact_id, paths in events.items():
                event = self.mlmd.Event(type=kind)
                for key, index in paths:
                    event.path.steps.add().key = key
                    event.path.steps.add().index = index
                artifacts_and_events.append((self.artifacts([artifact_id])[0], event))
        self.store.put_execution(execution, artifacts_and_events, self.store.get_contexts_by_id(self.contexts))

    def cached_outputs(self, cache_key: str):
        """The outputs of the newest completed execution with this cache key, or None."""
        for execution in sorted(self.store.get_executions_by_type(EXECUTION_TYPE), key=lambda e: -e.id):
            if execution.custom_properties["cache_fingerprint"].string_value != cache_key:
                continue
            if execution.last_known_state != self.mlmd.Execution.COMPLETE:
                continue
            outputs = {}
            for event in self.store.get_events_by_execution_ids([execution.id]):
                if event.type == self.mlmd.Event.OUTPUT:
                    outputs.setdefault(event.path.steps[0].key, []).append(event.artifact_id)
            return {k: self.store.get_artifacts_by_id(v) for k, v in outputs.items()}
        return None

    def artifacts(self, ids: List[int]):
        return self.store.get_artifacts_by_id(ids) if ids else []

    def metadata_of(self, artifact) -> dict:
        """Properties and custom properties as the driver sends them (converter.go toRuntimeArtifact)."""
        metadata = {}
        for properties in (artifact.properties, artifact.custom_properties):
            for name, value in properties.items():
                kind = value.WhichOneof("value")
                if kind == "int_value":
                    metadata[name] = float(value.int_value)
                elif kind == "double_value":
                    metadata[name] = value.double_value
                elif kind == "string_value":
                    metadata[name] = value.string_value
                elif kind == "struct_value":
                    from google.protobuf import json_format

                    metadata[name] = json_format.MessageToDict(value.struct_value)
        return metadata

    def query(self, wanted: dict):
        """LIVE artifacts matching a parsed resolver filter, newest first."""
        try:
            candidates = self.store.get_artifacts_by_type(wanted.get("type", ""))
        except Exception:  # noqa: BLE001 - an unknown type has no artifacts
            return []
        matches = []
        for artifact in candidates:
            if wanted.get("state") == "LIVE" and artifact.state != self.mlmd.Artifact.LIVE:
                continue
            if "id" in wanted and artifact.id != wanted["id"]:
                continue
            metadata = self.metadata_of(artifact)
            if any(metadata.get(k) != v for k, v in wanted.get("metadata", {}).items()):
                continue
            matches.append(artifact)
        return sorted(matches, key=lambda a: -a.id)


def _artifact_id(runtime_artifact: dict) -> int:
    return int(runtime_artifact["name"].rsplit("/", 1)[-1])


def _set_value(target, value, wrap: bool) -> None:
    from google.protobuf import json_format

    if isinstance(value, bool):
        target.int_value = int(value)
    elif isinstance(value, (int, float)):
        target.double_value = float(value)
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, dict):
        json_format.ParseDict({"struct": value} if wrap else value, target.struct_value)
    elif isinstance(value, list):
        if wrap:
            json_format.ParseDict({"list": value}, target.struct_value)
        else:
            target.string_value = json.dumps(value)
