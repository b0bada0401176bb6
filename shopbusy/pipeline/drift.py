"""The drift check's configuration, read from the curated schema.

The schema holds each column's TFDV `drift_comparator` (L-infinity distance for categorical
columns, Jensen-Shannon divergence for numeric ones) with its threshold and the
measurement behind it. TFX 1.16's DistributionValidator takes the comparators as a
DistributionValidatorConfig instead of a schema, so this module copies them over: the
schema stays the one place where the data contract, drift thresholds included, is written.
"""

from typing import Dict

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.proto import distribution_validator_pb2

from shopbusy.pipeline.config import SCHEMA_PATH, TRAIN_SPLIT

# What the drift check compares: the train split of the newest span with the train split
# of the span before (each about half of a span's rows; see config.SPLIT_BUCKETS).
DRIFT_SPLIT = TRAIN_SPLIT

def load_schema(schema_path: str = SCHEMA_PATH) -> schema_pb2.Schema:
    with open(schema_path) as f:
        return text_format.Parse(f.read(), schema_pb2.Schema())

def distribution_validator_config(schema_path: str = SCHEMA_PATH) -> distribution_validator_pb2.DistributionValidatorConfig:
    """One FeatureComparator per schema column that has a drift comparator."""
    config = distribution_validator_pb2.DistributionValidatorConfig()
    for feature in load_schema(schema_path).feature:
        if feature.HasField("drift_comparator"):
            comparator = config.default_slice_config.feature.add()
            comparator.path.step.append(feature.name)
            comparator.distribution_comparator.CopyFrom(feature.drift_comparator)
    return config

def skew_schema(schema: schema_pb2.Schema) -> schema_pb2.Schema:
    """The schema with each drift comparator also set as the column's skew comparator:
    `predict` compares its input with the served model's training statistics on the same
    distances and thresholds as week-to-week drift (measured on the same kind of samples)."""
    schema = schema_pb2.Schema.FromString(schema.SerializeToString())
    for feature in schema.feature:
        if feature.HasField("drift_comparator"):
            feature.skew_comparator.CopyFrom(feature.drift_comparator)
    return schema


def threshold_of(comparator) -> float:
    if comparator.HasField("infinity_norm"):
        return comparator.infinity_norm.threshold
    return comparator.jensen_shannon_divergence.threshold

def thresholds(schema_path: str = SCHEMA_PATH) -> Dict[str, float]:
    """Column -> drift threshold, for the columns the schema checks (bench/drift_thresholds.py)."""
    return {
        feature.name: threshold_of(feature.drift_comparator)
        for feature in load_schema(schema_path).feature
        if feature.HasField("drift_comparator")
    }
