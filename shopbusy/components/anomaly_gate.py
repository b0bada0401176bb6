"""A gate between ExampleValidator and Transform: anomalies stop the run.

ExampleValidator records anomalies but lets the pipeline go on; a model trained on data
that breaks the contract must never be pushed, so this component fails the run instead,
with one line per column and TFDV's own description of what is wrong.
"""

import json
import os

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.types.standard_artifacts import ExampleAnomalies

ANOMALIES_FILE = "SchemaDiff.pb"  # what ExampleValidator writes for each split


class AnomaliesFoundError(RuntimeError):
    """The data does not match the curated schema."""


def describe_anomalies(anomalies_uri: str, split_names: list) -> list:
    """One line per column with an anomaly: TFDV's descriptions and the splits it is in."""
    splits_by_problem = {}
    for split in split_names:
        # fileio, not open(): on a cluster the URI is gs://... or s3://...
        with fileio.open(os.path.join(anomalies_uri, f"Split-{split}", ANOMALIES_FILE), "rb") as f:
            anomalies = anomalies_pb2.Anomalies.FromString(f.read())
        for column, info in anomalies.anomaly_info.items():
            reasons = "; ".join(f"{r.short_description}: {r.description}" for r in info.reason) or info.description
            splits_by_problem.setdefault(f"column '{column}': {reasons}", []).append(split)
        if anomalies.HasField("dataset_anomaly_info"):
            reasons = "; ".join(r.description for r in anomalies.dataset_anomaly_info.reason)
            splits_by_problem.setdefault(f"whole dataset: {reasons}", []).append(split)
    return [f"{problem} (splits: {', '.join(splits)})" for problem, splits in sorted(splits_by_problem.items())]


@component
def AnomalyGate(anomalies: InputArtifact[ExampleAnomalies]):
    """Raises AnomaliesFoundError when ExampleValidator found anything in any split."""
    problems = describe_anomalies(anomalies.uri, json.loads(anomalies.split_names))
    if problems:
        raise AnomaliesFoundError("the data does not match the schema:\n  " + "\n  ".join(problems))
