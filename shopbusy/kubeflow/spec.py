"""A compiled spec read back, and checked the way the backend that takes it checks it.

Open-source Kubeflow Pipelines turns the PipelineSpec into an Argo Workflow when the run is
created, without sanitizing names (kubeflow/pipelines backend/src/v2/compiler/argocompiler/
argo.go templateName, "TODO(Bobgy): sanitize", tags 2.0.5 to 2.15.0 and master), and Argo
refuses the whole run if any name breaks its rule. What becomes a name there
(argocompiler/dag.go `task`, container.go `containerDriverTask`): each DAG task as it is, its
driver task `<task>-driver`, and each component's template. Argo's rule
(argo-workflows util/util.go `workflowFieldNameFmt`, `workflowFieldMaxLength`; checked in
workflow/validate/validate.go when the API server creates the run): `[a-zA-Z0-9][-a-zA-Z0-9]*`,
at most 128 characters. The argo compiler also refuses resolver executors (argo.go `Resolver`:
"resolver not implemented yet"). Vertex AI takes TFX's resolver tasks and its names as TFX
compiles them (its own tests); only the pipeline name is checked for it.
"""

import json
import os
import re
from typing import Tuple

import yaml

from shopbusy.kubeflow.errors import KubeflowError

ARGO_NAME = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$")
ARGO_NAME_MAX = 128
DRIVER_SUFFIX = "-driver"  # argocompiler/dag.go: the driver task of every container task
# Kubeflow and Vertex AI pipeline names (the kfp SDK's and Vertex's rule).
PIPELINE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def load(package: str) -> Tuple[dict, dict]:
    """The compiled document (.yaml PipelineSpec or .json PipelineJob) and its PipelineSpec."""
    if not os.path.isfile(package):
        raise KubeflowError(f"--package {package!r}: no such file (run `shopbusy kubeflow compile` first)")
    with open(package) as f:
        document = json.load(f) if package.endswith(".json") else yaml.safe_load(f)
    return document, document.get("pipelineSpec", document)


def problems(spec: dict, target: str) -> list:
    """Why the backend of `target` would refuse the spec: one line each, none if it takes it."""
    found = []
    name = spec.get("pipelineInfo", {}).get("name", "")
    if not PIPELINE_NAME.match(name):
        found.append(f"pipeline name {name!r} is not [a-z0-9][a-z0-9-]*")
    if target != "kfp":
        return found

    def argo_name(what: str, value: str) -> None:
        if not ARGO_NAME.match(value) or len(value) > ARGO_NAME_MAX:
            found.append(
                f"{what} {value!r}: Argo refuses the run; names must match [a-zA-Z0-9][-a-zA-Z0-9]* "
                f"and have at most {ARGO_NAME_MAX} characters (no '_' or '.')"
            )

    for task_name, task in spec["root"]["dag"]["tasks"].items():
        argo_name("task", task_name)
        argo_name("task", task_name + DRIVER_SUFFIX)
        component = task["componentRef"]["name"]
        argo_name("component", component)
        executor = spec.get("deploymentSpec", {}).get("executors", {}).get(spec["components"][component].get("executorLabel"))
        if executor and "resolver" in executor:
            found.append(f"task {task_name!r}: open-source KFP runs no resolver executors (argo.go: not implemented)")
        for upstream in task.get("dependentTasks", []):
            if upstream not in spec["root"]["dag"]["tasks"]:
                found.append(f"task {task_name!r} depends on {upstream!r}, which is no task")
    return found


def check(spec: dict, target: str) -> None:
    """Raises with the first problem, as the API server would refuse the run."""
    found = problems(spec, target)
    if found:
        raise KubeflowError(f"the backend would refuse this spec: {found[0]}" + (f" (and {len(found) - 1} more)" if len(found) > 1 else ""))
