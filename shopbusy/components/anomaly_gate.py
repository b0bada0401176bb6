"""A gate between data validation and Transform: anomalies stop the run, drift per policy.

ExampleValidator records anomalies but lets the pipeline go on; a model trained on data
that breaks the contract must never be pushed, so this component fails the run instead,
with one line per column and TFDV's own description of what is wrong. With weekly spans,
DistributionValidator measures each column's drift from the previous accepted span; the
gate stops on it under `on_drift="stop"` and only logs it under "warn" (the Evaluator then
judges the new model on the new span).

The gate also consumes the span's statistics and examples: locally its completed executions
are what marks a span as accepted in ML Metadata (pipeline/resolvers.py); on a cluster, where
no resolver reads ML Metadata, a passing gate writes the span into the record of accepted
spans under the pipeline root (`accepted_dir`, components/accepted_spans.py).
"""

import json
import logging
import os
from typing import List

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.types.standard_artifacts import ExampleAnomalies, Examples, ExampleStatistics

from shopbusy.components import accepted_spans, run_record

ANOMALIES_FILE = "SchemaDiff.pb"  # what ExampleValidator and DistributionValidator write


class AnomaliesFoundError(RuntimeError):
    """The data does not match the curated schema (or drifted, under --on-drift stop)."""


class DriftFoundError(AnomaliesFoundError):
    """The newest span drifted from the previous one beyond the schema's thresholds."""


def _read(path: str) -> anomalies_pb2.Anomalies:
    # fileio, not open(): on a cluster the URI is gs://... or s3://...
    with fileio.open(path, "rb") as f:
        return anomalies_pb2.Anomalies.FromString(f.read())


def describe_anomalies(anomalies_uri: str, split_names: list) -> list:
    """One line per column with an anomaly: TFDV's descriptions and the splits it is in."""
    splits_by_problem = {}
    for split in split_names:
        anomalies = _read(os.path.join(anomalies_uri, f"Split-{split}", ANOMALIES_FILE))
        for column, info in anomalies.anomaly_info.items():
            reasons = "; ".join(f"{r.short_description}: {r.description}" for r in info.reason) or info.description
            splits_by_problem.setdefault(f"column '{column}': {reasons}", []).append(split)
        if anomalies.HasField("dataset_anomaly_info"):
            reasons = "; ".join(r.description for r in anomalies.dataset_anomaly_info.reason)
            splits_by_problem.setdefault(f"whole dataset: {reasons}", []).append(split)
    return [f"{problem} (splits: {', '.join(splits)})" for problem, splits in sorted(splits_by_problem.items())]


def drift_anomalies(anomalies_uri: str, split_names_json: str) -> List[anomalies_pb2.Anomalies]:
    """DistributionValidator's findings, one proto per split pair; none on a first span."""
    pairs = json.loads(split_names_json) if split_names_json else []
    return [_read(os.path.join(anomalies_uri, f"SplitPair-{pair}", ANOMALIES_FILE)) for pair in pairs]


def describe_drift(found: List[anomalies_pb2.Anomalies]) -> list:
    """One line per column whose drift is above its threshold."""
    return [
        f"column '{column}': " + "; ".join(r.description for r in info.reason)
        for anomalies in found
        for column, info in sorted(anomalies.anomaly_info.items())
    ]


@component
def AnomalyGate(
    anomalies: InputArtifact[ExampleAnomalies],
    statistics: InputArtifact[ExampleStatistics],
    examples: InputArtifact[Examples],
    drift: InputArtifact[ExampleAnomalies] = None,
    baseline_statistics: InputArtifact[ExampleStatistics] = None,
    on_drift: Parameter[str] = "warn",
    accepted_dir: Parameter[str] = "",
    pipeline_root: Parameter[str] = "",
    input_base: Parameter[str] = "",
):
    """Raises AnomaliesFoundError when ExampleValidator found anything in any split, and
    DriftFoundError on drift when `on_drift` is "stop"; otherwise records the span as
    accepted under `accepted_dir`, if given. A cluster run (`pipeline_root` given) that it
    stops is recorded under the root first, with `baseline_statistics`, the span the drift was
    measured against: no report task runs after a failed one (components/run_record.py)."""

    def reject(error: AnomaliesFoundError):
        if pipeline_root:
            artifacts = {
                "examples": [examples], "statistics": [statistics], "schema_anomalies": [anomalies],
                "drift": [drift] if drift else [], "baseline_statistics": [baseline_statistics] if baseline_statistics else [],
            }  # fmt: skip
            run_record.write(pipeline_root, run_record.record_data(artifacts, input_base, rejected=True))
        raise error

    span = f"span {examples.span}: " if examples.span else ""
    problems = describe_anomalies(anomalies.uri, json.loads(anomalies.split_names))
    if problems:
        reject(AnomaliesFoundError(f"{span}the data does not match the schema:\n  " + "\n  ".join(problems)))
    drifted = describe_drift(drift_anomalies(drift.uri, drift.split_names)) if drift else []
    if drifted and on_drift == "stop":
        reject(
            DriftFoundError(f"{span}the data drifted from the previous span (--on-drift stop):\n  " + "\n  ".join(drifted))
        )
    for line in drifted:
        logging.warning("drift (--on-drift %s): %s", on_drift, line)
    if accepted_dir:
        accepted_spans.record_accepted(accepted_dir, examples, statistics)
