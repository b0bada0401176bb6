"""A run as ML Metadata knows it: what it read, what it trained, what TFMA decided, what it
pushed. Shared by `shopbusy run`, `shopbusy runs` and the slice report."""

import dataclasses
import functools
import datetime
import json
import os
from typing import Dict, List, Optional, Set

from shopbusy.components.modules.features import HISTORY_FILE
from shopbusy.pipeline import config, ingested, nodes
from shopbusy.results import metadata

# The lineage `runs show` prints: node, and the outputs worth a URI.
LINEAGE = [
    (nodes.EXAMPLE_GEN, "examples"),
    (nodes.STATISTICS_GEN, "statistics"),
    (nodes.EXAMPLE_VALIDATOR, "anomalies"),
    (nodes.DISTRIBUTION_VALIDATOR, "anomalies"),
    (nodes.ANOMALY_GATE, None),
    (nodes.TRANSFORM, "transform_graph"),
    (nodes.TRAINER, "model"),
    (nodes.EVALUATOR, "evaluation"),
    (nodes.PUSHER, "pushed_model"),
]


@dataclasses.dataclass(frozen=True)
class DriftMeasurement:
    """One column's distance between the newest span and the previous accepted one."""

    column: str
    distance: str  # "L-infinity" or "Jensen-Shannon"
    value: float
    threshold: float

    @property
    def exceeded(self) -> bool:
        return self.value > self.threshold

    def describe(self) -> str:
        return f"{self.column} {self.distance} {self.value:.3f} > {self.threshold:g}"


_DISTANCE_NAMES = {1: "L-infinity", 2: "Jensen-Shannon"}  # DriftSkewInfo.Measurement.Type


@dataclasses.dataclass
class RunRecord:
    run_id: str
    started: datetime.datetime
    executions: Dict[str, metadata.ComponentExecution]

    def output(self, node: str, key: str):
        """The first artifact `node` output under `key` in this run (reused ones included)."""
        execution = self.executions.get(node)
        artifacts = execution.outputs.get(key) if execution else None
        return artifacts[0] if artifacts else None

    def output_uri(self, node: str, key: str) -> Optional[str]:
        artifact = self.output(node, key)
        return artifact.uri if artifact else None

    def split_names(self, node: str, key: str) -> List[str]:
        return json.loads(metadata.string_property(self.output(node, key), "split_names") or "[]")

    def _execution_property(self, node: str, name: str):
        execution = self.executions.get(node)
        return metadata.execution_property(execution.execution, name) if execution else None

    @property
    def data_path(self) -> Optional[str]:
        return self._execution_property(nodes.EXAMPLE_GEN, "input_base")

    @property
    def data_fingerprint(self) -> Optional[str]:
        examples = self.output(nodes.EXAMPLE_GEN, "examples")
        return metadata.custom_property(examples, "input_fingerprint") if examples else None

    @property
    def input_size(self) -> Optional[Dict[str, int]]:
        """The files and bytes ExampleGen read (fingerprint_size)."""
        return fingerprint_size(self.data_fingerprint) if self.data_fingerprint else None

    @property
    def tensorboard_logs(self) -> Optional[str]:
        """The Trainer's TensorBoard log directory (one run per candidate), if it trained."""
        return self.output_uri(nodes.TRAINER, "model_run") if self.training else None

    def input_spans(self, node: str, key: str) -> List[int]:
        """The spans a node read. On a cluster the readers of the accepted spans' record put
        several spans in one artifact, or none (no earlier accepted span), and list them."""
        from shopbusy.components.accepted_spans import ACCEPTED_SPANS_PROPERTY

        execution = self.executions.get(node)
        spans = set()
        for artifact in execution.inputs.get(key, []) if execution else []:
            listed = metadata.custom_property(artifact, ACCEPTED_SPANS_PROPERTY)
            spans.update(json.loads(listed) if listed else [metadata.span(artifact)])
        return sorted(spans)

    @property
    def span(self) -> Optional[int]:
        """The span this run ingested (0 without span folders); None before ExampleGen ran."""
        examples = self.output(nodes.EXAMPLE_GEN, "examples")
        return metadata.span(examples) if examples else None

    @property
    def training_spans(self) -> List[int]:
        """The spans the model was trained on (Transform's inputs)."""
        return self.input_spans(nodes.TRANSFORM, "examples")

    @property
    def drift_baseline_span(self) -> Optional[int]:
        """The span the newest one was compared with; None when there was none to compare."""
        spans = self.input_spans(nodes.DISTRIBUTION_VALIDATOR, "baseline_statistics")
        return spans[0] if spans else None

    @functools.cached_property
    def drift(self) -> List[DriftMeasurement]:
        """Each column's drift from the previous accepted span, largest relative to its
        threshold first; empty when there was no previous span."""
        anomalies = self.output(nodes.DISTRIBUTION_VALIDATOR, "anomalies")
        if anomalies is None or self.drift_baseline_span is None:
            return []
        from shopbusy.components.anomaly_gate import drift_anomalies

        found = drift_anomalies(anomalies.uri, metadata.string_property(anomalies, "split_names"))
        measurements = [
            DriftMeasurement(".".join(info.path.step), _DISTANCE_NAMES.get(m.type, str(m.type)), m.value, m.threshold)
            for proto in found
            for info in proto.drift_skew_info
            for m in info.drift_measurements
        ]
        return sorted(measurements, key=lambda m: (-m.value / (m.threshold or 1), m.column))

    @property
    def training(self) -> Optional[dict]:
        """What run_fn recorded: curves, restarts or warm start, schedule (None if not trained)."""
        run_dir = self.output_uri(nodes.TRAINER, "model_run")
        text = read_text(os.path.join(run_dir, HISTORY_FILE)) if run_dir else None
        return json.loads(text) if text else None

    @property
    def warm_start(self) -> Optional[str]:
        """'warm start from ...' or 'cold start: <why>'; None if not trained (or recorded)."""
        training = self.training
        if not training:
            return None
        # Before it had its own key, the start was filed under the restarts.
        return training.get("start") or (training.get("restarts") or {}).get("warm_start")

    @property
    def candidates(self) -> List[dict]:
        """Each candidate the Trainer fitted, with its validation loss and accuracy, in order."""
        training = self.training
        return list(training.get("candidates", [])) if training else []

    @property
    def chosen_candidate(self) -> Optional[str]:
        """The candidate the Trainer exported (lowest validation loss); None if not recorded."""
        training = self.training
        return training.get("candidate") if training else None

    @property
    def ensemble_members(self) -> List[str]:
        """The candidates the exported ensemble averages; empty when one candidate was exported."""
        training = self.training
        return list(training.get("members", [])) if training else []

    def describe_candidates(self) -> Optional[str]:
        """'crossed (validation loss 0.2841; dense 0.2921, ...)', or 'ensemble (validation
        loss 0.2790, the average of crossed and trees; ...)': the choice in one line."""
        if not self.candidates:
            return None
        others = ", ".join(
            f"{c['name']} {c['val_loss']:.4f}" for c in self.candidates if c["name"] != self.chosen_candidate
        )
        chosen = next(c for c in self.candidates if c["name"] == self.chosen_candidate)
        members = self.ensemble_members
        average = f", the average of {', '.join(members[:-1])} and {members[-1]}" if members else ""
        line = f"{chosen['name']} (validation loss {chosen['val_loss']:.4f}{average}" + (f"; {others})" if others else ")")
        refit = self.refit
        if refit and refit.get("folds", 1) > 1:
            line += f"; its {refit['candidate']} the mean of {refit['folds']} fold models over {refit['rows']:,} training and validation rows"
        elif refit:
            line += f"; its {refit['candidate']} refitted on {refit['rows']:,} training and validation rows"
        return line

    @property
    def refit(self) -> Optional[dict]:
        """How the exported model's trees learned from train + valid: cross-fitted on both
        (small data: `folds` > 1) or refitted on both after the choice (rows, iterations,
        leaves, its figures on the validation rows it has now seen); None when not."""
        training = self.training
        return training.get("refit") if training else None

    @property
    def model_uri(self) -> Optional[str]:
        return self.output_uri(nodes.TRAINER, "model")

    @property
    def evaluation_uri(self) -> Optional[str]:
        return self.output_uri(nodes.EVALUATOR, "evaluation")

    @property
    def eval_config_json(self) -> Optional[str]:
        return self._execution_property(nodes.EVALUATOR, "eval_config")

    @property
    def gates(self) -> Optional[config.Gates]:
        """The bounds this run was judged by: its stored eval config's, not today's defaults."""
        if not self.eval_config_json:
            return None
        import tensorflow_model_analysis as tfma  # only readers of an evaluated run pay for it
        from google.protobuf import json_format

        from shopbusy.pipeline.eval_config import gates_of

        return gates_of(json_format.Parse(self.eval_config_json, tfma.EvalConfig()))

    @property
    def blessed(self) -> Optional[bool]:
        """None when the run never reached the Evaluator."""
        blessing = self.output(nodes.EVALUATOR, "blessing")
        return metadata.custom_property(blessing, "blessed") == 1 if blessing else None

    @property
    def pushed_model(self) -> Optional[str]:
        pushed = self.output(nodes.PUSHER, "pushed_model")
        if pushed and metadata.custom_property(pushed, "pushed") == 1:
            return metadata.custom_property(pushed, "pushed_destination")
        return None

    @property
    def already_served(self) -> Optional[str]:
        """The served version this run's blessed model already is (a re-run over the same
        data with every task cached up to the Trainer): nothing was pushed, nothing had to be."""
        from shopbusy.components.served_models import ALREADY_SERVED  # imports TensorFlow: not at CLI start

        pushed = self.output(nodes.PUSHER, "pushed_model")
        return (metadata.custom_property(pushed, ALREADY_SERVED) or None) if pushed else None

    @property
    def verdict(self) -> str:
        if self.pushed_model:
            return "blessed and pushed"
        if self.already_served:
            return f"blessed; already served as version {self.already_served}"
        if self.blessed:
            return "blessed, not pushed"
        if self.blessed is False:
            return "not blessed: nothing pushed"
        failed = [node for node, e in self.executions.items() if e.state == "FAILED"]
        if nodes.ANOMALY_GATE in failed:
            if any(m.exceeded for m in self.drift) and not self._schema_anomalies():
                return f"input rejected: span {self.span} drifted from span {self.drift_baseline_span}"
            return "input rejected: the data does not match the schema"
        if failed:
            return f"failed in {', '.join(failed)}"
        return "did not finish"

    def _schema_anomalies(self) -> List[str]:
        uri = self.output_uri(nodes.EXAMPLE_VALIDATOR, "anomalies")
        if not uri:
            return []
        from shopbusy.components.anomaly_gate import describe_anomalies

        return describe_anomalies(uri, self.split_names(nodes.EXAMPLE_VALIDATOR, "anomalies"))

    @property
    def pushed_version(self) -> Optional[str]:
        return os.path.basename(self.pushed_model) if self.pushed_model else None


def load(store, run_id: str) -> RunRecord:
    """Reads one run; cached executions point at the artifacts they reused."""
    context = metadata.run_context(store, run_id)
    return RunRecord(
        run_id=run_id,
        started=datetime.datetime.fromtimestamp(context.create_time_since_epoch / 1000),
        executions={e.node: e for e in metadata.run_executions(store, run_id)},
    )


def read_text(path: str) -> Optional[str]:
    """A file's text, None when it is missing; gs:// through TensorFlow's filesystems (a
    cluster run's artifacts), local files without importing TensorFlow."""
    if "://" in path:
        import tensorflow as tf

        if not tf.io.gfile.exists(path):
            return None
        with tf.io.gfile.GFile(path) as f:
            return f.read()
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return f.read()


def fingerprint_size(fingerprint: str) -> Dict[str, int]:
    """Files and bytes, summed over TFX's input fingerprint: one line per split,
    'split:NAME,num_files:N,total_bytes:B,xor_checksum:..,sum_checksum:..'
    (tfx/utils/io_utils.py generate_fingerprint, 1.16)."""
    fields = [dict(part.split(":", 1) for part in line.split(",")) for line in fingerprint.splitlines() if line]
    return {"files": sum(int(f["num_files"]) for f in fields), "bytes": sum(int(f["total_bytes"]) for f in fields)}


def latest(metadata_path: str) -> RunRecord:
    """The workdir's newest run."""
    store = metadata.open_store(metadata_path)
    return load(store, metadata.latest_run_id(store))


def history(metadata_path: str) -> List[RunRecord]:
    """Every run in the workdir, newest first."""
    store = metadata.open_store(metadata_path)
    return [load(store, run_id) for run_id in metadata.run_ids(store)]


def ingested_spans(metadata_path: str) -> Set[int]:
    """The spans ExampleGen has ingested in this workdir: its live output Examples' spans.
    `shopbusy run` asks before every run over span folders (cli/run.py, late spans), so this
    reads ExampleGen's node context once rather than every run's record (`history`), of
    which a workdir run weekly for a year holds fifty."""
    return {ingested.span(artifact) for artifact in ingested.examples(metadata.open_store(metadata_path), config.PIPELINE_NAME)}


def training_statistics(metadata_path: str, model_dir: str) -> Optional[str]:
    """The train split's statistics (FeatureStats.pb) of the run that pushed `model_dir`,
    newest span's; None when no run of this workdir pushed it."""
    if not os.path.exists(metadata_path):
        return None
    target = os.path.realpath(model_dir)
    for record in history(metadata_path):
        if record.pushed_model and os.path.realpath(record.pushed_model) == target:
            uri = record.output_uri(nodes.STATISTICS_GEN, "statistics")
            return metadata.statistics_file(uri, config.TRAIN_SPLIT) if uri else None
    return None
