"""A cluster run as its tasks recorded it under the pipeline root (components/run_record.py),
read without ML Metadata: the `runs.RunRecord` the report is rendered from, one
ComponentExecution per component holding the artifacts that component made or read.

The record is written before the Pusher runs (a task after a conditional one cannot be
scheduled when the condition is false: the Pusher only runs for a blessed model). Reading it
back later, a blessed model is found pushed when a served version's marker names it
(components/served_models.py).
"""

import dataclasses
import datetime
import json
import posixpath
from typing import Dict, List, Optional

from shopbusy.components import run_record
from shopbusy.pipeline import config, nodes
from shopbusy.results import metadata, runs

# What each artifact a record names is to the run (components/run_record.ROLES):
# (component, "outputs" or "inputs", key), the place runs.RunRecord looks for it.
ROLES = {
    "examples": (nodes.EXAMPLE_GEN, "outputs", "examples"),
    "statistics": (nodes.STATISTICS_GEN, "outputs", "statistics"),
    "schema_anomalies": (nodes.EXAMPLE_VALIDATOR, "outputs", "anomalies"),
    "drift": (nodes.DISTRIBUTION_VALIDATOR, "outputs", "anomalies"),
    "baseline_statistics": (nodes.DISTRIBUTION_VALIDATOR, "inputs", "baseline_statistics"),
    "training_examples": (nodes.TRANSFORM, "inputs", "examples"),
    "model": (nodes.TRAINER, "outputs", "model"),
    "model_run": (nodes.TRAINER, "outputs", "model_run"),
    "evaluation": (nodes.EVALUATOR, "outputs", "evaluation"),
    "blessing": (nodes.EVALUATOR, "outputs", "blessing"),
}


@dataclasses.dataclass
class RecordedRun(runs.RunRecord):
    """A RunRecord read from the record: `pusher_follows` while the Pusher has not run yet."""

    pusher_follows: bool = False

    @property
    def verdict(self) -> str:
        if self.pusher_follows and self.blessed and not self.pushed_model:
            return "blessed: the Pusher pushes it next"
        return super().verdict


def to_record(data: dict, pusher_follows: bool = False, served: Optional[Dict[str, str]] = None) -> RecordedRun:
    """The run a record describes; with `served` (served_versions), a blessed model that a
    served version's marker names is recorded as pushed there."""
    from google.protobuf import json_format
    from ml_metadata.proto import metadata_store_pb2

    executions: Dict[str, metadata.ComponentExecution] = {}

    def execution(node: str) -> metadata.ComponentExecution:
        if node not in executions:
            executions[node] = metadata.ComponentExecution(node, "COMPLETE", 0.0, {}, metadata_store_pb2.Execution())
        return executions[node]

    for role, found in data["artifacts"].items():
        node, side, key = ROLES[role]
        artifacts = [json_format.ParseDict(a, metadata_store_pb2.Artifact()) for a in found]
        getattr(execution(node), side)[key] = artifacts
    if "training_examples" not in data["artifacts"] and "model" in data["artifacts"]:
        # Trained on the new span alone: Transform read ExampleGen's artifact.
        execution(nodes.TRANSFORM).inputs["examples"] = execution(nodes.EXAMPLE_GEN).outputs["examples"]
    if data.get("rejected"):
        execution(nodes.ANOMALY_GATE).state = "FAILED"
    if data.get("input_base"):
        execution(nodes.EXAMPLE_GEN).execution.custom_properties["input_base"].string_value = data["input_base"]
    if data.get("eval_config"):
        execution(nodes.EVALUATOR).execution.custom_properties["eval_config"].string_value = data["eval_config"]
    record = RecordedRun(
        run_id=data["run_id"],
        started=datetime.datetime.fromisoformat(data["started"]),
        executions=executions,
        pusher_follows=pusher_follows,
    )
    version_dir = (served or {}).get(record.model_uri) if record.blessed else None
    if version_dir:  # what the Pusher's output says of a push (runs.RunRecord.pushed_model)
        pushed = metadata_store_pb2.Artifact()
        pushed.custom_properties["pushed"].int_value = 1
        pushed.custom_properties["pushed_destination"].string_value = version_dir
        executions[nodes.PUSHER] = metadata.ComponentExecution(
            nodes.PUSHER, "COMPLETE", 0.0, {"pushed_model": [pushed]}, metadata_store_pb2.Execution()
        )
    return record


def served_versions(serving_dir: str) -> Dict[str, str]:
    """Each served version's folder by the model its marker names (components/served_models.py):
    read once for all the records under a root."""
    from shopbusy.components import served_models

    served = {}
    for version in served_models.pushed_versions(serving_dir):
        version_dir = posixpath.join(serving_dir, version)
        model = served_models.read_marker(version_dir).get("model")
        if model:
            served[model] = version_dir
    return served


def load_all(pipeline_root: str) -> List[RecordedRun]:
    """Every recorded run under a pipeline root, oldest first."""
    from tfx.dsl.io import fileio

    folder = run_record.reports_dir(pipeline_root)
    paths = fileio.glob(posixpath.join(folder, "*", run_record.RECORD_FILE))
    served = served_versions(posixpath.join(pipeline_root.rstrip("/"), config.SERVING_DIR)) if paths else {}
    records = []
    for path in paths:
        with fileio.open(path) as f:
            records.append(to_record(json.loads(f.read()), served=served))
    return sorted(records, key=lambda r: (r.started, r.run_id))
