"""A run as ML Metadata knows it: what it read, what it trained, what TFMA decided, what it
pushed. Shared by `shopbusy run`, `shopbusy runs` and the slice report."""

import dataclasses
import datetime
import json
import os
from typing import Dict, List, Optional

from pipeline import metadata

# The lineage `runs show` prints: node, and the outputs worth a URI.
LINEAGE = [
    ("CsvExampleGen", "examples"),
    ("StatisticsGen", "statistics"),
    ("ExampleValidator", "anomalies"),
    ("AnomalyGate", None),
    ("Transform", "transform_graph"),
    ("Trainer", "model"),
    ("Evaluator", "evaluation"),
    ("Pusher", "pushed_model"),
]


@dataclasses.dataclass
class RunRecord:
    run_id: str
    started: datetime.datetime
    executions: Dict[str, metadata.ComponentExecution]
    data_path: Optional[str]
    data_fingerprint: Optional[str]
    model_uri: Optional[str]
    evaluation_uri: Optional[str]
    eval_config_json: Optional[str]
    blessed: Optional[bool]  # None when the run never reached the Evaluator
    pushed_model: Optional[str]

    @property
    def verdict(self) -> str:
        if self.pushed_model:
            return "blessed and pushed"
        if self.blessed:
            return "blessed, not pushed"
        if self.blessed is False:
            return "not blessed: nothing pushed"
        failed = [node for node, e in self.executions.items() if e.state == "FAILED"]
        if "AnomalyGate" in failed:
            return "input rejected: the data does not match the schema"
        if failed:
            return f"failed in {', '.join(failed)}"
        return "did not finish"

    @property
    def pushed_version(self) -> Optional[str]:
        return os.path.basename(self.pushed_model) if self.pushed_model else None

    def output_uri(self, node: str, key: str) -> Optional[str]:
        execution = self.executions.get(node)
        artifacts = execution.outputs.get(key) if execution else None
        return artifacts[0].uri if artifacts else None

    def split_names(self, node: str, key: str) -> List[str]:
        artifacts = self.executions[node].outputs[key]
        return json.loads(artifacts[0].properties["split_names"].string_value or "[]")


def load(store, run_id: str) -> RunRecord:
    """Reads one run; cached executions point at the artifacts they reused."""
    executions = {e.node: e for e in metadata.run_executions(store, run_id)}
    context = store.get_context_by_type_and_name(metadata.RUN_CONTEXT_TYPE, run_id)

    def first_output(node, key):
        execution = executions.get(node)
        artifacts = execution.outputs.get(key) if execution else None
        return artifacts[0] if artifacts else None

    examples = first_output("CsvExampleGen", "examples")
    blessing = first_output("Evaluator", "blessing")
    pushed = first_output("Pusher", "pushed_model")
    evaluation = first_output("Evaluator", "evaluation")
    model = first_output("Trainer", "model")
    example_gen = executions.get("CsvExampleGen")
    evaluator = executions.get("Evaluator")
    return RunRecord(
        run_id=run_id,
        started=datetime.datetime.fromtimestamp(context.create_time_since_epoch / 1000),
        executions=executions,
        data_path=metadata.custom_property(example_gen.execution, "input_base") if example_gen else None,
        data_fingerprint=metadata.custom_property(examples, "input_fingerprint") if examples else None,
        model_uri=model.uri if model else None,
        evaluation_uri=evaluation.uri if evaluation else None,
        eval_config_json=metadata.custom_property(evaluator.execution, "eval_config") if evaluator else None,
        blessed=(metadata.custom_property(blessing, "blessed") == 1) if blessing else None,
        pushed_model=(
            metadata.custom_property(pushed, "pushed_destination")
            if pushed and metadata.custom_property(pushed, "pushed") == 1
            else None
        ),
    )


def history(metadata_path: str) -> List[RunRecord]:
    """Every run in the workdir, newest first."""
    store = metadata.open_store(metadata_path)
    return [load(store, run_id) for run_id in metadata.run_ids(store)]
