"""Which spans passed the AnomalyGate, kept under the pipeline root for cluster runs.

Locally, ML Metadata says which spans were accepted: TFX resolver functions find the newest K
for the Trainer and the previous one for the drift check (pipeline/resolvers.py).
KubeflowV2DagRunner compiles no resolver functions (tfx/orchestration/kubeflow/v2/
step_builder.py, TFX 1.16), and open-source KFP runs no resolver tasks at all. So on a
cluster the AnomalyGate writes down each span it passes, and two ordinary tasks read that
record, the way ServedModel reads the serving folder (components/served_baseline.py):

- `PreviousAcceptedStatistics` (task PreviousAcceptedSpan), before the gate: the statistics of the newest accepted span
  older than the new one, the DistributionValidator's baseline (empty when there is none,
  which `DistributionValidator` below takes as no baseline, as TFX does for a missing one);
- `AcceptedTrainingSpans`, after the gate: one Examples artifact holding the new span and the
  K-1 newest accepted spans before it, for Transform (a KFP output is one artifact).

The record is one JSON file per span, `<root>/accepted_spans/span-<N>.json`, naming the
span's Examples and ExampleStatistics artifacts (their URIs stay valid: KFP never deletes
artifacts). A span accepted again with new data (a corrected span) replaces its file: the
latest version of each span counts, as `ops.LatestSpan` does locally. Only a passing gate
writes it, so a rejected span is never trained on and never a drift baseline.

Each file is written under a temporary name and renamed. Locally the rename is atomic; on
GCS it copies one object to another, and an object is created or replaced whole: either
way a reader sees the old record or the new one, never part of one. Readers ignore anything
that is not `span-<N>.json`.
"""

import json
import os
import re
import time
import uuid
from typing import List

from google.protobuf import json_format
from tfx import types
from tfx.components.distribution_validator import component as distribution_validator_component
from tfx.components.distribution_validator import executor as distribution_validator_executor
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.dsl.io import fileio
from tfx.proto import distribution_validator_pb2
from tfx.types import artifact_utils, component_spec, standard_artifacts, standard_component_specs
from tfx.utils import io_utils

ACCEPTED_SPANS_DIR = "accepted_spans"  # under a Kubeflow pipeline root
ACCEPTED_DIR_KEY = "accepted_dir"
NUM_SPANS_KEY = "num_spans"
# On both readers' outputs: the spans it holds, a JSON list ("[]": no earlier accepted span).
ACCEPTED_SPANS_PROPERTY = "accepted_spans"
SPAN_EXAMPLES_PROPERTY = "span_examples"  # on AcceptedTrainingSpans' output: [[span, Examples URI], ...]
_RECORD = re.compile(r"^span-(\d+)\.json$")


def record_accepted(accepted_dir: str, examples, statistics) -> str:
    """Writes down that the span of `examples` passed the gate; returns the record's path."""
    span = int(examples.span or 0)
    record = {
        "span": span,
        "version": int(examples.version or 0),
        "examples": examples.uri,
        "split_names": json.loads(examples.split_names),
        "payload_format": examples.get_string_custom_property("payload_format"),
        "input_fingerprint": examples.get_string_custom_property("input_fingerprint"),
        "statistics": statistics.uri,
        "statistics_split_names": json.loads(statistics.split_names),
        "accepted_at": time.time(),
    }
    return write_whole(os.path.join(accepted_dir, f"span-{span}.json"), json.dumps(record, indent=1))


def write_whole(path: str, text: str) -> str:
    """Writes `path` under a temporary name in its folder and renames it into place, so that
    a reader sees the old file or the new one, never part of one (see above)."""
    folder, name = os.path.split(path)
    fileio.makedirs(folder)
    temporary = os.path.join(folder, f".{name}.{uuid.uuid4().hex}")
    with fileio.open(temporary, "w") as f:
        f.write(text)
    fileio.rename(temporary, path, overwrite=True)
    return path


def accepted(accepted_dir: str) -> List[dict]:
    """Every accepted span's record, oldest span first."""
    if not fileio.isdir(accepted_dir):
        return []
    records = []
    for name in fileio.listdir(accepted_dir):
        if _RECORD.match(name.rstrip("/")):
            with fileio.open(os.path.join(accepted_dir, name.rstrip("/"))) as f:
                records.append(json.loads(f.read()))
    return sorted(records, key=lambda record: record["span"])


def accepted_before(accepted_dir: str, span: int, count: int) -> List[dict]:
    """The newest `count` accepted spans older than `span`, oldest first."""
    older = [record for record in accepted(accepted_dir) if record["span"] < span]
    return older[-count:] if count > 0 else []


class PreviousAcceptedStatisticsSpec(component_spec.ComponentSpec):
    PARAMETERS = {ACCEPTED_DIR_KEY: component_spec.ExecutionParameter(type=str)}
    INPUTS = {"examples": component_spec.ChannelParameter(type=standard_artifacts.Examples)}
    OUTPUTS = {"statistics": component_spec.ChannelParameter(type=standard_artifacts.ExampleStatistics)}


class PreviousAcceptedStatisticsExecutor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        [examples] = input_dict["examples"]
        [statistics] = output_dict["statistics"]
        previous = accepted_before(exec_properties[ACCEPTED_DIR_KEY], int(examples.span or 0), 1)
        statistics.set_string_custom_property(ACCEPTED_SPANS_PROPERTY, json.dumps([r["span"] for r in previous]))
        for record in previous:  # at most one
            io_utils.copy_dir(record["statistics"], statistics.uri)
            statistics.span = record["span"]
            statistics.split_names = json.dumps(record["statistics_split_names"])


class PreviousAcceptedStatistics(base_component.BaseComponent):
    """The statistics of the newest accepted span before the new one (empty if none)."""

    SPEC_CLASS = PreviousAcceptedStatisticsSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(PreviousAcceptedStatisticsExecutor)

    def __init__(self, accepted_dir: str, examples: types.BaseChannel):
        statistics = types.Channel(type=standard_artifacts.ExampleStatistics)
        super().__init__(spec=PreviousAcceptedStatisticsSpec(accepted_dir=accepted_dir, examples=examples, statistics=statistics))


class AcceptedTrainingSpansSpec(component_spec.ComponentSpec):
    PARAMETERS = {
        ACCEPTED_DIR_KEY: component_spec.ExecutionParameter(type=str),
        NUM_SPANS_KEY: component_spec.ExecutionParameter(type=int),
    }
    INPUTS = {"examples": component_spec.ChannelParameter(type=standard_artifacts.Examples)}
    OUTPUTS = {"training_examples": component_spec.ChannelParameter(type=standard_artifacts.Examples)}


class AcceptedTrainingSpansExecutor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        [new] = input_dict["examples"]
        [merged] = output_dict["training_examples"]
        span = int(new.span or 0)
        earlier = accepted_before(exec_properties[ACCEPTED_DIR_KEY], span, exec_properties[NUM_SPANS_KEY] - 1)
        sources = [(r["span"], r["examples"]) for r in earlier] + [(span, new.uri)]
        merged.split_names = new.split_names
        splits = artifact_utils.decode_split_names(new.split_names)
        # The files are copied, not referenced: an Examples artifact is one folder per split,
        # and Transform reads every file in it (Split-<name>/*).
        for split in splits:
            target = artifact_utils.get_split_uri([merged], split)
            fileio.makedirs(target)
            for source_span, uri in sources:
                folder = os.path.join(uri, f"Split-{split}")
                for name in fileio.listdir(folder):
                    fileio.copy(os.path.join(folder, name), os.path.join(target, f"span-{source_span}-{name}"), overwrite=True)
        merged.span, merged.version = span, int(new.version or 0)
        for name in ("payload_format", "input_fingerprint"):
            merged.set_string_custom_property(name, new.get_string_custom_property(name))
        merged.set_string_custom_property(ACCEPTED_SPANS_PROPERTY, json.dumps([s for s, _ in sources]))
        # Where each span's files came from: Transform reads them there, so that its analyzer
        # cache is keyed the same every week (components/spanwise_transform.py).
        merged.set_string_custom_property(SPAN_EXAMPLES_PROPERTY, json.dumps([[s, uri] for s, uri in sources]))


class AcceptedTrainingSpans(base_component.BaseComponent):
    """The new span and the `num_spans` - 1 newest accepted spans before it, as one Examples."""

    SPEC_CLASS = AcceptedTrainingSpansSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(AcceptedTrainingSpansExecutor)

    def __init__(self, accepted_dir: str, num_spans: int, examples: types.BaseChannel):
        merged = types.Channel(type=standard_artifacts.Examples)
        spec = AcceptedTrainingSpansSpec(
            accepted_dir=accepted_dir, num_spans=num_spans, examples=examples, training_examples=merged
        )
        super().__init__(spec=spec)


def is_empty(statistics) -> bool:
    """PreviousAcceptedStatistics' output when no earlier span was accepted."""
    spans = statistics.get_string_custom_property(ACCEPTED_SPANS_PROPERTY)
    return bool(spans) and not json.loads(spans)


class DistributionValidatorExecutor(distribution_validator_executor.Executor):
    """TFX's, except that an empty baseline (no earlier accepted span) is no baseline, which
    TFX's executor passes ("rubber stamping"), as a resolver that found nothing does locally.

    It also takes its config as TFX's Kubeflow v2 entrypoint hands it over, a JSON string
    (kubeflow_v2_run_executor.py parses no proto parameters), where TFX 1.16's executor
    (distribution_validator/executor.py, _get_distribution_validator_config) expects the proto
    the local launcher gives it and fails on `config.default_slice_config`."""

    def Do(self, input_dict, output_dict, exec_properties):
        baseline = input_dict.get("baseline_statistics") or []
        if baseline and is_empty(baseline[0]):
            input_dict = dict(input_dict, baseline_statistics=[])
        config = exec_properties.get(standard_component_specs.DISTRIBUTION_VALIDATOR_CONFIG_KEY)
        if isinstance(config, str):
            parsed = json_format.Parse(config, distribution_validator_pb2.DistributionValidatorConfig())
            exec_properties = dict(exec_properties, **{standard_component_specs.DISTRIBUTION_VALIDATOR_CONFIG_KEY: parsed})
        return super().Do(input_dict, output_dict, exec_properties)


class DistributionValidator(distribution_validator_component.DistributionValidator):
    """TFX's DistributionValidator with DistributionValidatorExecutor."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(DistributionValidatorExecutor)
