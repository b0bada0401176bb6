"""The Evaluator's real work, done directly: a reference for its time (issue 28).

    python -m bench.evaluator_reference --workdir WORKDIR      # prints one JSON line

On what WORKDIR's newest evaluated run evaluated (its Evaluator's examples and model, from
ML Metadata), it times:
- scoring every eval row through the exported model's `serving_default` signature, in large
  batches, parsing included (the model's own tf.Example parsing and Transform layer);
- numpy computing, for every slice of the pipeline's slicing specs, the metrics the
  Evaluator computes for it: example count, confusion counts at the decision threshold,
  accuracy, precision, recall, FPR, FNR, and the AUC from a 1,000-bucket score histogram.

Reading the TFRecords and loading the model are timed apart: the Evaluator does both too,
but they are not what grows with slices and metrics. What TFMA adds beyond this (per-example
Python combiners, plots, validation, writing) is the Evaluator's wall time minus the
reference's.
"""

import argparse
import glob
import json
import os
import sys
import time

import numpy as np
import tensorflow as tf

from shopbusy.components.modules import features
from shopbusy.pipeline import config, nodes
from shopbusy.results import runs

BATCH_ROWS = 20_000
AUC_BUCKETS = dict(config.METRIC_BY_KEY["auc"].options)["num_thresholds"]  # as the eval config's AUC


def newest_evaluated(workdir: str):
    """The examples and model URIs the workdir's newest evaluated run's Evaluator read."""
    record = next(r for r in runs.history(config.Workdir(workdir).metadata_path) if nodes.EVALUATOR in r.executions)
    evaluator = record.executions[nodes.EVALUATOR]
    return evaluator.inputs["examples"][0].uri, evaluator.inputs["model"][0].uri


def _slice_metrics(labels: np.ndarray, scores: np.ndarray, group: np.ndarray, groups: int) -> dict:
    """Every group's metrics at once: counts by bincount, the AUC by the trapezoid rule over
    each group's cumulative score histogram (what TFMA's AUC does per slice)."""
    predicted = scores > config.DECISION_THRESHOLD
    busy = labels == 1

    def count(mask):
        return np.bincount(group[mask], minlength=groups).astype(np.float64)

    tp, fp = count(predicted & busy), count(predicted & ~busy)
    tn, fn = count(~predicted & ~busy), count(~predicted & busy)
    with np.errstate(divide="ignore", invalid="ignore"):
        metrics = {
            "example_count": tp + fp + tn + fn, "true_positives": tp, "false_positives": fp, "true_negatives": tn,
            "false_negatives": fn, "binary_accuracy": (tp + tn) / (tp + fp + tn + fn), "precision": tp / (tp + fp),
            "recall": tp / (tp + fn), "fall_out": fp / (fp + tn), "miss_rate": fn / (fn + tp),
        }  # fmt: skip
        bucket = np.minimum((scores * AUC_BUCKETS).astype(np.int64), AUC_BUCKETS - 1)
        cell = group * AUC_BUCKETS + bucket
        positives = np.bincount(cell[busy], minlength=groups * AUC_BUCKETS).reshape(groups, AUC_BUCKETS)
        negatives = np.bincount(cell[~busy], minlength=groups * AUC_BUCKETS).reshape(groups, AUC_BUCKETS)
        # True and false positive rates as the threshold falls from 1 to 0.
        tpr = np.cumsum(positives[:, ::-1], axis=1) / positives.sum(axis=1, keepdims=True)
        fpr = np.cumsum(negatives[:, ::-1], axis=1) / negatives.sum(axis=1, keepdims=True)
        tpr, fpr = np.pad(tpr, ((0, 0), (1, 0))), np.pad(fpr, ((0, 0), (1, 0)))
        metrics["auc"] = np.sum((fpr[:, 1:] - fpr[:, :-1]) * (tpr[:, 1:] + tpr[:, :-1]) / 2, axis=1)
    return metrics


def reference(examples_uri: str, model_uri: str) -> dict:
    files = glob.glob(os.path.join(examples_uri, f"Split-{config.EVAL_SPLIT}", "*"))
    start = time.monotonic()
    serialized = [batch.numpy() for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(BATCH_ROWS)]
    read = time.monotonic() - start
    start = time.monotonic()
    serve = tf.saved_model.load(os.path.join(model_uri, "Format-Serving")).signatures["serving_default"]
    load = time.monotonic() - start

    start = time.monotonic()
    scores = np.concatenate([serve(examples=tf.constant(batch))[features.SERVING_OUTPUT_KEY].numpy()[:, 0] for batch in serialized])
    columns = sorted({column for keys in features.SLICE_KEYS for column in keys})
    spec = {column: tf.io.FixedLenFeature([1], tf.int64) for column in columns}
    parsed = [tf.io.parse_example(batch, spec) for batch in serialized]
    values = {column: np.concatenate([p[column].numpy()[:, 0] for p in parsed]) for column in columns}
    score = time.monotonic() - start

    start = time.monotonic()
    labels = values[features.LABEL_KEY]
    slices, overall = 0, None
    for keys in [[]] + features.SLICE_KEYS:  # the eval config's slicing specs: overall first
        if keys:
            _, group = np.unique(np.stack([values[k] for k in keys], axis=1), axis=0, return_inverse=True)
            group = group.ravel()
        else:
            group = np.zeros(len(labels), dtype=np.int64)
        groups = int(group.max()) + 1 if len(group) else 0
        computed = _slice_metrics(labels, scores, group, groups)
        overall = overall or {name: float(value[0]) for name, value in computed.items()}
        slices += groups
    metrics = time.monotonic() - start
    return {
        "rows": int(len(scores)),
        "slices": slices,
        "read_seconds": round(read, 3),
        "load_seconds": round(load, 3),
        "score_seconds": round(score, 3),
        "metrics_seconds": round(metrics, 3),
        "seconds": round(score + metrics, 3),  # the reference: scoring plus every slice's metrics
        "overall": overall,  # to check against the Evaluator's own
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args(argv)
    print(json.dumps(reference(*newest_evaluated(args.workdir))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
