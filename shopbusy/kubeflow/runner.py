"""Compiles the shopbusy pipeline for Kubeflow Pipelines v2 and Vertex AI Pipelines
(submitting and scheduling: kubeflow/client.py; running a spec here: kubeflow/local_launcher.py).

The DAG is shopbusy.pipeline.pipeline.create_pipeline, as for local runs. On the cluster every
component runs in the project's image, which has this package installed, so the Transform
and Trainer code is named by import path (no module-file wheel, no local path in the spec).
"""

import dataclasses
import json
import os
import posixpath
import re
from typing import Optional, Sequence

import yaml

from shopbusy.data.inputs import SPAN_PATTERN
from shopbusy.kubeflow import spec as spec_check
from shopbusy.kubeflow.errors import KubeflowError
from shopbusy.pipeline import config, nodes
from shopbusy.pipeline import target as targets

# Where shopbusy/kubeflow/Dockerfile puts the project in the image: the pods read the
# curated schema and the bundled dataset from the package there.
IMAGE_PROJECT_ROOT = "/shopbusy"
IMAGE_PACKAGE_ROOT = posixpath.join(IMAGE_PROJECT_ROOT, "shopbusy")
IMAGE_SCHEMA_PATH = posixpath.join(IMAGE_PACKAGE_ROOT, "schemas", "schema.pbtxt")
IMAGE_DATA_ROOT = posixpath.join(IMAGE_PACKAGE_ROOT, "data", "shops")
DEFAULT_OUTPUT = "shopbusy-pipeline.yaml"
# The one runtime parameter: where the pods read the CSVs. The gates live inside the
# Evaluator's eval_config proto, which TFX cannot take as a runtime parameter, so they are
# set when compiling.
DATA_ROOT_PARAMETER = "data-root"
# Inside a pod: Beam's DirectRunner with one worker process per CPU the task requests
# (HEAVY_RESOURCES, DEFAULT_RESOURCES). `--direct_num_workers=0` would mean one per core of the *node*.
CLUSTER_BEAM_ARGS = [
    config.MULTI_PROCESSING,
    *config.pipeline_package_args(posixpath.join(IMAGE_PROJECT_ROOT, "setup.py")),  # the image's checkout
]
DIRECT_NUM_WORKERS = config.DIRECT_NUM_WORKERS

# The backends a spec is compiled for (pipeline/target.py says how each differs from a local run).
TARGETS = targets.CLUSTER_TARGETS
# Roots a pod can use: KFP's backend takes gs, s3, minio and mem roots
# (kubeflow/pipelines backend/src/v2/objectstore/config.go), Vertex AI gs only, and the image's
# TensorFlow has the file and gs filesystems only (no s3 without tensorflow-io). An absolute
# local path is for `shopbusy kubeflow run-local`; submit and schedule refuse it.
CLUSTER_ROOT_SCHEME = config.GCS


@dataclasses.dataclass(frozen=True)
class Resources:
    """What a task's pod requests and is limited to; Beam runs one worker per CPU."""

    cpu: float
    memory_gb: float


# Data-parallel Beam tasks and the Trainer get the large pods; the others read small files.
DEFAULT_RESOURCES = Resources(cpu=1, memory_gb=2)
HEAVY_TASKS = (nodes.EXAMPLE_GEN, nodes.STATISTICS_GEN, nodes.TRANSFORM, nodes.TRAINER, nodes.EVALUATOR)
HEAVY_RESOURCES = Resources(cpu=2, memory_gb=8)
# Every TFX container task runs through this wrapper of TFX's v2 entrypoint
# (shopbusy/kubeflow/entrypoint.py: what the open-source backend sends that TFX cannot read).
TFX_ENTRYPOINT = "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"
ENTRYPOINT = "shopbusy.kubeflow.entrypoint"


def target_of(output: str, target: Optional[str] = None) -> str:
    """The backend a spec is for: as given, else from the output's extension (.json is the
    PipelineJob Vertex AI takes; .yaml the PipelineSpec Kubeflow Pipelines takes)."""
    if target:
        if target not in TARGETS:
            raise KubeflowError(f"--target {target!r}: one of {', '.join(TARGETS)}")
        return target
    return targets.VERTEX.name if output.endswith(targets.VERTEX.spec_suffixes) else targets.KFP.name


def check_pipeline_root(pipeline_root: str) -> None:
    """Refuses, in one line, a root that neither the backends nor the image can use."""
    if pipeline_root.startswith(CLUSTER_ROOT_SCHEME) or pipeline_root.startswith("/"):
        return
    scheme = pipeline_root.split("://")[0] + "://" if "://" in pipeline_root else "a relative path"
    raise KubeflowError(
        f"--pipeline-root {pipeline_root!r}: {scheme} cannot work; the image's TensorFlow reads gs:// "
        "and local paths only (use gs://BUCKET/PATH for a cluster, an absolute path for run-local)"
    )


def cluster_run_config(
    pipeline_root: str,
    data_root: str = IMAGE_DATA_ROOT,
    beam_args: Sequence[str] = (),
    gates: config.Gates = config.Gates(),
    training: Optional[config.Training] = None,
    spans: bool = False,
    target: str = "kfp",
    train_spans: int = 1,
    on_drift: str = "warn",
    analyzer_cache: bool = True,
) -> config.RunConfig:
    """The pipeline's configuration for a cluster: everything under a root the pods can read,
    the data root a runtime parameter defaulting to `data_root`. With `spans`, the data root
    holds span folders (span-1/, span-2/, ...) and each run ingests the newest; training then
    warm-starts from the served model unless `training` says otherwise, as locally."""
    check_pipeline_root(pipeline_root)
    if training is None:
        training = config.Training(warm_start=spans)
    if train_spans > 1 and not spans:
        raise KubeflowError(f"--train-spans {train_spans} needs --spans: a plain data root is one span")
    run_config = config.RunConfig(
        data_root=data_root,
        data_pattern=SPAN_PATTERN if spans else "*",
        pipeline_root=pipeline_root,
        serving_dir=posixpath.join(pipeline_root, config.SERVING_DIR),
        schema_path=IMAGE_SCHEMA_PATH,
        gates=gates,
        training=training,
        beam_args=CLUSTER_BEAM_ARGS + list(beam_args),
        train_spans=train_spans,
        on_drift=on_drift,
        analyzer_cache=analyzer_cache,
        target=targets.named(target),
    )
    try:  # before TensorFlow is imported: a refused option answers at once
        run_config.target.check(run_config)
    except targets.TargetError as e:
        raise KubeflowError(str(e)) from e
    from tfx.orchestration.data_types import RuntimeParameter  # tfx.v1.dsl.experimental's

    parameter = RuntimeParameter(name=DATA_ROOT_PARAMETER, ptype=str, default=data_root)
    return dataclasses.replace(run_config, data_root=parameter)


def compile_pipeline(run_config: config.RunConfig, image: str, output: str = DEFAULT_OUTPUT) -> str:
    """Writes the spec for the run's target: a .yaml file is the bare PipelineSpec (Kubeflow
    Pipelines, kfp client); a .json file is the PipelineJob that Vertex AI Pipelines takes.
    Returns its path."""
    target = run_config.target.name
    # tfx.v1.orchestration.experimental's, from the module that defines them (as pipeline/tfx_api.py).
    from tfx.orchestration.kubeflow.v2.kubeflow_v2_dag_runner import KubeflowV2DagRunner, KubeflowV2DagRunnerConfig

    from shopbusy.pipeline.pipeline import create_pipeline

    if not output.endswith((".yaml", ".yml", ".json")):
        raise KubeflowError(f"--output {output!r} must end in .yaml (Kubeflow Pipelines) or .json (Vertex AI)")
    data_root = run_config.data_root.default
    runner = KubeflowV2DagRunner(
        # Pipeline spec 2.1: with 2.0, TFX 1.16 fails to write a spec with runtime parameters.
        config=KubeflowV2DagRunnerConfig(default_image=image, use_pipeline_spec_2_1=True)
    )
    job = runner.run(create_pipeline(run_config), parameter_values={DATA_ROOT_PARAMETER: data_root}, write_out=False)
    spec = job["pipelineSpec"]
    # TFX 1.16 drops runtime parameters' defaults from the spec; a run started without
    # arguments must still know where the data is.
    spec["root"]["inputDefinitions"]["parameters"][DATA_ROOT_PARAMETER]["defaultValue"] = data_root
    # The root the spec is for. The backend itself ignores it (driver/root_dag.go): `submit`
    # and `schedule` send it with each run, and a run without one (started from the UI) gets
    # minio://mlpipeline/v2/artifacts, which its first task refuses (entrypoint.py).
    spec["defaultPipelineRoot"] = run_config.pipeline_root
    _bind_conditions_to_task_inputs(spec["root"]["dag"]["tasks"])
    _start_with_the_up_to_date_check(spec, image, run_config)
    _wrap_entrypoint_and_size_tasks(spec)
    if not run_config.target.runs_example_gen_driver:
        # The open-source backend runs no ExampleGen driver (lifecycle.preCacheCheck) and keys
        # its cache on parameters, input artifact ids and the unsubstituted command
        # (backend/src/v2/cacheutils/cache.go GenerateCacheKey, 2.0.5-2.15.0): with the same
        # data-root every run would be a cache hit and new data never read. ExampleGen
        # re-reads its input every run, and so does the task that reads the serving folder
        # (same parameters, new pushes). Their outputs are new artifacts each run, so the
        # tasks after them run again too: the price of no driver (README, "Kubeflow").
        for reads_outside_the_dag in (nodes.EXAMPLE_GEN, nodes.LATEST_BLESSED_MODEL):
            spec["root"]["dag"]["tasks"][reads_outside_the_dag]["cachingOptions"] = {}
        spec["deploymentSpec"]["executors"][f"{nodes.EXAMPLE_GEN}_executor"]["container"].pop("lifecycle", None)
    # The readers of the accepted spans' record (components/accepted_spans.py) read outside the
    # DAG on every backend: the same input (a cached ExampleGen on Vertex AI) can meet a record
    # that has grown since. Never cached, so what follows them runs again too on Vertex AI when
    # the run is not up to date.
    for reads_the_record in (nodes.PREVIOUS_ACCEPTED_SPAN, nodes.ACCEPTED_TRAINING_SPANS):
        if reads_the_record in spec["root"]["dag"]["tasks"]:
            spec["root"]["dag"]["tasks"][reads_the_record]["cachingOptions"] = {}
    spec.setdefault("pipelineInfo", {})["description"] = f"shopbusy, compiled for {target}"
    spec_check.check(spec, target)  # before writing: a spec the backend refuses is never written
    output = os.path.abspath(output)
    with open(output, "w") as f:
        if output.endswith(".json"):
            json.dump(job, f, indent=1, sort_keys=True)
        else:
            f.write(f"# PIPELINE DEFINITION\n# Name: {config.PIPELINE_NAME}\n# Inputs:\n#  {DATA_ROOT_PARAMETER}: str\n")
            yaml.safe_dump(job["pipelineSpec"], f, sort_keys=True)
    return output


def _wrap_entrypoint_and_size_tasks(spec: dict) -> None:
    """Every container runs TFX's entrypoint through shopbusy's wrapper, and requests the
    CPUs and memory its Beam workers are sized for."""
    for name, task in spec["root"]["dag"]["tasks"].items():
        executor = spec["deploymentSpec"]["executors"][spec["components"][task["componentRef"]["name"]]["executorLabel"]]
        container = executor.get("container")
        if not container:
            continue
        runs_tfx = container["command"][-1] == TFX_ENTRYPOINT
        if runs_tfx:
            container["command"] = container["command"][:-1] + [ENTRYPOINT]
        resources = HEAVY_RESOURCES if name in HEAVY_TASKS else DEFAULT_RESOURCES
        container["resources"] = {
            "cpuRequest": resources.cpu,
            "cpuLimit": resources.cpu,
            "memoryRequest": resources.memory_gb,
            "memoryLimit": resources.memory_gb,
        }
        workers = [arg for arg in container["args"] if arg.startswith(DIRECT_NUM_WORKERS)]
        if runs_tfx and not workers:
            container["args"].append(f"{DIRECT_NUM_WORKERS}={max(1, int(resources.cpu))}")


UP_TO_DATE_TASK = "UpToDate"
UP_TO_DATE_MODULE = "shopbusy.kubeflow.up_to_date"


def _start_with_the_up_to_date_check(spec: dict, image: str, run_config: config.RunConfig) -> None:
    """Adds the UpToDate task (kubeflow/up_to_date.py) and makes every task that starts the
    run conditional on its answer, so a run over the data and configuration the served model
    was made from skips every task. Written into the spec here because TFX's DSL has no
    container task with an output parameter, nor a condition on one; both are plain KFP
    (pipeline_spec.proto: ComponentOutputsSpec.parameters, TriggerPolicy.condition)."""
    from shopbusy.components.served_models import RECIPE
    from shopbusy.pipeline.pipeline import recipe_digest
    from shopbusy.kubeflow.up_to_date import UP_TO_DATE

    tasks = spec["root"]["dag"]["tasks"]
    example_gen = tasks[nodes.EXAMPLE_GEN]["inputs"]["parameters"]
    constants = {
        "serving_dir": run_config.serving_dir,
        "input_config": example_gen["input_config"]["runtimeValue"]["constant"],
        RECIPE: recipe_digest(run_config),
    }
    spec["components"][UP_TO_DATE_TASK] = {
        "executorLabel": f"{UP_TO_DATE_TASK}_executor",
        "inputDefinitions": {"parameters": {k: {"parameterType": "STRING"} for k in ("input_base", *constants)}},
        "outputDefinitions": {"parameters": {UP_TO_DATE: {"parameterType": "STRING"}}},
    }
    spec["deploymentSpec"]["executors"][f"{UP_TO_DATE_TASK}_executor"] = {
        "container": {
            "image": image,
            "command": ["python", "-m", UP_TO_DATE_MODULE],
            "args": [
                "--serving-dir", "{{$.inputs.parameters['serving_dir']}}",
                "--input-base", "{{$.inputs.parameters['input_base']}}",
                "--input-config", "{{$.inputs.parameters['input_config']}}",
                "--recipe", f"{{{{$.inputs.parameters['{RECIPE}']}}}}",
                "--output-file", f"{{{{$.outputs.parameters['{UP_TO_DATE}'].output_file}}}}",
            ],
        }
    }  # fmt: skip
    tasks[UP_TO_DATE_TASK] = {
        "taskInfo": {"name": UP_TO_DATE_TASK},
        "componentRef": {"name": UP_TO_DATE_TASK},
        "inputs": {
            "parameters": {
                "input_base": example_gen["input_base"],
                **{k: {"runtimeValue": {"constant": v}} for k, v in constants.items()},
            }
        },
        "cachingOptions": {},  # it reads outside the DAG, like ExampleGen on open-source KFP
    }
    for name, task in tasks.items():
        executor = spec["deploymentSpec"]["executors"][spec["components"][task["componentRef"]["name"]]["executorLabel"]]
        if name == UP_TO_DATE_TASK or task.get("dependentTasks") or "container" not in executor:
            continue
        task.setdefault("inputs", {}).setdefault("parameters", {})[UP_TO_DATE] = {
            "taskOutputParameter": {"producerTask": UP_TO_DATE_TASK, "outputParameterKey": UP_TO_DATE}
        }
        inputs = spec["components"][task["componentRef"]["name"]].setdefault("inputDefinitions", {})
        inputs.setdefault("parameters", {})[UP_TO_DATE] = {"parameterType": "STRING"}
        task["dependentTasks"] = [UP_TO_DATE_TASK]
        task["triggerPolicy"] = {"condition": f"inputs.parameter_values['{UP_TO_DATE}'] == 'false'"}


_CONDITION_INPUT = re.compile(r"inputs\.artifacts\['([^']+)'\]")


def _bind_conditions_to_task_inputs(tasks: dict) -> None:
    """Makes each trigger condition name the task's own input for the channel it tests.

    TFX 1.16 writes the Pusher's condition against `inputs.artifacts['_Evaluator.blessing']`
    (the key Channel.future() presets, which can even differ between two compilations in one
    process), while the task's inputs are `model` and `model_blessing`. KFP's driver evaluates
    the condition against the task's inputs and fails on a missing key, so a blessed model
    would never be pushed. The key is rebound to the input fed by the same producer output."""
    for name, task in tasks.items():
        condition = task.get("triggerPolicy", {}).get("condition")
        if not condition:
            continue
        inputs = task.get("inputs", {}).get("artifacts", {})

        def own_input(match, inputs=inputs, name=name):
            key = match.group(1)
            if key in inputs:
                return match.group(0)
            producer, _, output = key.lstrip("_").partition(".")
            for input_name, spec in inputs.items():
                source = spec.get("taskOutputArtifact", {})
                if (source.get("producerTask"), source.get("outputArtifactKey")) == (producer, output):
                    return f"inputs.artifacts['{input_name}']"
            raise KubeflowError(f"task {name}: its condition reads {key!r}, which is none of its inputs")

        task["triggerPolicy"]["condition"] = _CONDITION_INPUT.sub(own_input, condition)
