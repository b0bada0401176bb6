"""Compiles the shopbusy pipeline for Kubeflow Pipelines v2 (and Vertex AI Pipelines) and
submits or schedules it through the kfp client.

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
from shopbusy.pipeline import config

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
# Inside a pod: Beam's DirectRunner with one worker process per core of the pod.
CLUSTER_BEAM_ARGS = ["--direct_running_mode=multi_processing", "--direct_num_workers=0"]
REMOTE_SCHEMES = ("gs://", "s3://", "hdfs://", "abfs://", "az://")
# KFP cron schedules have six fields, seconds first: "0 0 3 * * *" is 03:00 every day.
CRON_FIELD = re.compile(r"^[0-9A-Za-z*?/,\-#LW]+$")


class KubeflowError(Exception):
    """A usage problem with a one-line explanation (exit code 2)."""


def cluster_run_config(
    pipeline_root: str,
    data_root: str = IMAGE_DATA_ROOT,
    beam_args: Sequence[str] = (),
    gates: config.Gates = config.Gates(),
    training: config.Training = config.Training(),
    spans: bool = False,
) -> config.RunConfig:
    """The pipeline's configuration for a cluster: everything under a root the pods can read,
    the data root a runtime parameter defaulting to `data_root`. With `spans`, the data root
    holds span folders (span-1/, span-2/, ...) and each run ingests the newest."""
    if not (pipeline_root.startswith(REMOTE_SCHEMES) or pipeline_root.startswith("/")):
        raise KubeflowError(
            f"--pipeline-root {pipeline_root!r} must be a location every pod can read: "
            "gs://, s3:// or an absolute path on a shared volume"
        )
    from tfx import v1 as tfx

    if spans:  # each run brings a new week: start from the last blessed model, as locally
        training = dataclasses.replace(training, warm_start=True)
    return config.RunConfig(
        data_root=tfx.dsl.experimental.RuntimeParameter(name=DATA_ROOT_PARAMETER, ptype=str, default=data_root),
        data_pattern=SPAN_PATTERN if spans else "*",
        pipeline_root=pipeline_root,
        serving_dir=posixpath.join(pipeline_root, "serving"),
        code_from_package=True,
        schema_path=IMAGE_SCHEMA_PATH,
        gates=gates,
        training=training,
        beam_args=CLUSTER_BEAM_ARGS + list(beam_args),
        # KubeflowV2DagRunner compiles Resolver nodes with a strategy class only, not the
        # resolver functions that find earlier spans: one span is trained, no drift check.
        resolves_earlier_spans=False,
    )


def compile_pipeline(run_config: config.RunConfig, image: str, output: str = DEFAULT_OUTPUT) -> str:
    """Writes the spec: a .yaml file is the bare PipelineSpec (Kubeflow Pipelines, kfp
    client); a .json file is the PipelineJob that Vertex AI Pipelines takes. Returns its path."""
    from tfx import v1 as tfx

    from shopbusy.pipeline.pipeline import create_pipeline

    if not output.endswith((".yaml", ".yml", ".json")):
        raise KubeflowError(f"--output {output!r} must end in .yaml (Kubeflow Pipelines) or .json (Vertex AI)")
    data_root = run_config.data_root.default
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        # Pipeline spec 2.1: with 2.0, TFX 1.16 fails to write a spec with runtime parameters.
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image, use_pipeline_spec_2_1=True)
    )
    job = runner.run(create_pipeline(run_config), parameter_values={DATA_ROOT_PARAMETER: data_root}, write_out=False)
    spec = job["pipelineSpec"]
    # TFX 1.16 drops runtime parameters' defaults from the spec; a run started without
    # arguments must still know where the data is.
    spec["root"]["inputDefinitions"]["parameters"][DATA_ROOT_PARAMETER]["defaultValue"] = data_root
    # The bare PipelineSpec (YAML) otherwise carries no root, and KFP would fall back to
    # minio://mlpipeline/v2/artifacts, which TensorFlow here cannot open.
    spec["defaultPipelineRoot"] = run_config.pipeline_root
    _bind_conditions_to_task_inputs(spec["root"]["dag"]["tasks"])
    output = os.path.abspath(output)
    with open(output, "w") as f:
        if output.endswith(".json"):
            json.dump(job, f, indent=1, sort_keys=True)
        else:
            f.write(f"# PIPELINE DEFINITION\n# Name: {config.PIPELINE_NAME}\n# Inputs:\n#  {DATA_ROOT_PARAMETER}: str\n")
            yaml.safe_dump(job["pipelineSpec"], f, sort_keys=True)
    return output


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


def validate_cron(expression: str) -> str:
    fields = expression.split()
    if len(fields) != 6 or not all(CRON_FIELD.match(f) for f in fields):
        raise KubeflowError(
            f"--cron {expression!r} is not a Kubeflow cron expression: six fields, seconds first, "
            "e.g. '0 0 3 * * *' for 03:00 every day"
        )
    return expression


def _client(host: str):
    import kfp

    if not re.match(r"^https?://[^/\s]+", host or ""):
        raise KubeflowError(f"--host {host!r} must be the Kubeflow Pipelines URL, e.g. http://localhost:8080")
    try:
        client = kfp.Client(host=host)
        client.get_kfp_healthz()
    except Exception as e:  # noqa: BLE001 - any connection or API failure means the host is not usable
        raise KubeflowError(f"cannot reach Kubeflow Pipelines at {host}: {type(e).__name__}") from e
    return client


def _package(path: str) -> str:
    if not os.path.isfile(path):
        raise KubeflowError(f"--package {path!r}: no such file (run `shopbusy kubeflow compile` first)")
    return path


def _pipeline_root(package: str) -> Optional[str]:
    """The root the spec was compiled for: KFP takes it with the run, not from the spec alone."""
    with open(package) as f:
        document = json.load(f) if package.endswith(".json") else yaml.safe_load(f)
    spec = document.get("pipelineSpec", document)
    return spec.get("defaultPipelineRoot") or document.get("runtimeConfig", {}).get("gcsOutputDirectory")


def submit(host: str, package: str, experiment: str, run_name: Optional[str] = None) -> str:
    """Starts one run of the compiled pipeline; returns its run id."""
    package = _package(package)
    result = _client(host).create_run_from_pipeline_package(
        package,
        arguments={},
        experiment_name=experiment,
        run_name=run_name or config.PIPELINE_NAME,
        pipeline_root=_pipeline_root(package),
    )
    return result.run_id


def schedule(host: str, cron: str, package: str, experiment: str) -> str:
    """Creates a recurring run of the compiled pipeline; returns its id."""
    cron, package = validate_cron(cron), _package(package)
    client = _client(host)
    experiment_id = client.create_experiment(experiment).experiment_id
    recurring = client.create_recurring_run(
        experiment_id=experiment_id,
        job_name=f"{config.PIPELINE_NAME} on '{cron}'",
        cron_expression=cron,
        pipeline_package_path=package,
        pipeline_root=_pipeline_root(package),
    )
    return recurring.recurring_run_id
