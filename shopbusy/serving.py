"""Scores raw rows in the seed's CSV format with a pushed model, through the SavedModel's
serving_default signature (the label column may be absent), as a client of the model would."""

import csv
import os
from typing import List, Optional

import tensorflow as tf
import tensorflow_data_validation as tfdv

from shopbusy.components import served_models
from shopbusy.components.modules.features import CSV_COLUMNS, LABEL_KEY, SERVING_OUTPUT_KEY
from shopbusy.data import inputs
from shopbusy.pipeline import config, drift

BATCH_SIZE = 4096


def resolve_model(model: str, serving_dir: str) -> str:
    if model != "latest":
        if not os.path.exists(os.path.join(model, "saved_model.pb")):
            raise inputs.InputError(f"{model}: not a SavedModel folder (no saved_model.pb)")
        return model
    newest = served_models.latest(serving_dir)
    if newest is None:
        raise inputs.InputError(f"{serving_dir}: no pushed model yet (run `shopbusy run` first)")
    return newest


def validate(source: inputs.DataSource, training_statistics: Optional[str] = None) -> List[str]:
    """The run's rules: readable integers in the contract's columns, then the curated
    schema's domains (SERVING environment, or TRAINING when the label is there); raises
    InputError on a problem. Returns training/serving skew warnings: each file's columns
    against `training_statistics` (a FeatureStats.pb of the model's training data) with the
    schema's drift thresholds as TFDV skew comparators. Skew does not stop scoring."""
    inputs.check(source, optional_columns=(LABEL_KEY,))
    schema = drift.skew_schema(drift.load_schema(config.SCHEMA_PATH))
    # Scoring is not training: a labelled file of one class (shops known to be quiet) is
    # valid input here, though the schema asks both classes of every training split.
    tfdv.get_feature(schema, LABEL_KEY).ClearField("unique_constraints")
    training = tfdv.load_stats_binary(training_statistics) if training_statistics else None
    problems, skew = [], []
    for path in source.files:
        with open(path, newline="", encoding="utf-8") as f:
            header = next(csv.reader(f))
        environment = "TRAINING" if LABEL_KEY in header else "SERVING"
        # With the schema: categorical integer columns get value counts, as in the pipeline.
        statistics = tfdv.generate_statistics_from_csv(path, stats_options=tfdv.StatsOptions(schema=schema))
        anomalies = tfdv.validate_statistics(statistics, schema, environment=environment)
        for column, info in sorted(anomalies.anomaly_info.items()):
            problems.append(f"{path}: column '{column}': {info.description}")
        if training is not None and not problems:
            compared = tfdv.validate_statistics(training, schema, serving_statistics=statistics)
            rows = statistics.datasets[0].num_examples
            # A column the schema keeps out of the file's environment (the label, in SERVING)
            # is absent by contract, not skewed. (TFDV's `environment` argument applies to the
            # training statistics here, where the label is present, and would flag it instead.)
            absent = {f.name for f in schema.feature if environment in f.not_in_environment}
            for column, info in sorted(compared.anomaly_info.items()):
                if column not in absent:
                    skew.append(f"{path} ({rows} rows): column '{column}': {info.description}")
    if problems:
        raise inputs.InputError("input rejected:\n  " + "\n  ".join(problems))
    return skew


def _example(row: dict) -> bytes:
    feature = {
        name: tf.train.Feature(int64_list=tf.train.Int64List(value=[int(row[name])]))
        for name in CSV_COLUMNS
        if name != LABEL_KEY
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def predict(model_dir: str, source: inputs.DataSource, out_path: str) -> int:
    """Writes every input row plus busy_probability and busy; returns the row count."""
    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    count = 0
    with open(out_path, "w", newline="") as out:
        writer = None
        for path in source.files:
            with open(path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                rows = [row for row in reader if any(row.values())]
            if writer is None:  # the header, not a first row: a file may have none
                writer = csv.DictWriter(out, fieldnames=reader.fieldnames + ["busy_probability", "busy"], lineterminator="\n")
                writer.writeheader()
            for start in range(0, len(rows), BATCH_SIZE):
                batch = rows[start : start + BATCH_SIZE]
                examples = tf.constant([_example(row) for row in batch])
                probabilities = serve(examples=examples)[SERVING_OUTPUT_KEY].numpy()[:, 0]
                for row, probability in zip(batch, probabilities):
                    writer.writerow(
                        dict(row, busy_probability=f"{probability:.6f}", busy=int(probability > config.DECISION_THRESHOLD))
                    )
            count += len(rows)
    return count
