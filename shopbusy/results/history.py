"""The workdir's runs over time, as data: what `shopbusy runs --format json` prints and what
the report's history chart draws (accuracy overall and per shop type, the largest drift,
and how each run ended)."""

from typing import List, Optional

from shopbusy.results import evaluation, metadata, runs

# How a run ended, for telling runs apart in the listing and on the chart.
PUSHED, ALREADY_SERVED, NOT_BLESSED, REJECTED, UNFINISHED = "pushed", "already served", "not blessed", "rejected", "unfinished"
BLESSED = "blessed"  # no push recorded: a cluster run's report task runs before its Pusher
SHOP_TYPE = "shop_type"


def outcome(record: runs.RunRecord) -> str:
    if record.pushed_model:
        return PUSHED
    if record.already_served:
        return ALREADY_SERVED
    if record.blessed is False:
        return NOT_BLESSED
    if record.blessed:
        return BLESSED
    if record.verdict.startswith("input rejected"):
        return REJECTED
    return UNFINISHED


def _largest_drift(record: runs.RunRecord) -> Optional[dict]:
    """The column that moved furthest relative to its threshold (L-infinity and Jensen-Shannon
    distances are not on one scale; their ratios to the schema's thresholds are)."""
    measurements = [m for m in record.drift if m.threshold > 0]
    if not measurements:
        return None
    largest = max(measurements, key=lambda m: m.value / m.threshold)
    return {
        "column": largest.column,
        "distance": largest.distance,
        "value": largest.value,
        "threshold": largest.threshold,
        "share_of_threshold": largest.value / largest.threshold,
    }


def summary(record: runs.RunRecord) -> dict:
    """One run in numbers; accuracy fields are None when it did not reach the Evaluator."""
    accuracy, interval, by_shop_type = None, None, {}
    if record.evaluation_uri:
        slices = evaluation.slice_metrics(record.evaluation_uri)
        candidate = evaluation.candidate_name(slices[()])
        accuracy = slices[()].get((evaluation.ACCURACY, candidate, False))
        interval = evaluation.slice_intervals(record.evaluation_uri).get((), {}).get((evaluation.ACCURACY, candidate, False))
        by_shop_type = {
            str(key[0][1]): metrics.get((evaluation.ACCURACY, candidate, False))
            for key, metrics in sorted(slices.items())
            if len(key) == 1 and key[0][0] == SHOP_TYPE
        }
    return {
        "run_id": record.run_id,
        "started": record.started.isoformat(),
        "data": record.data_path,
        "fingerprint": metadata.fingerprint_digest(record.data_fingerprint) if record.data_fingerprint else None,
        "span": record.span,
        "training_spans": record.training_spans,
        "drift_baseline_span": record.drift_baseline_span,
        "largest_drift": _largest_drift(record),
        "model": record.model_uri,
        "candidate": record.chosen_candidate,
        "accuracy": accuracy,
        "accuracy_interval": list(interval) if interval else None,
        "accuracy_by_shop_type": by_shop_type,
        "blessed": record.blessed,
        "pushed_version": record.pushed_version,
        "verdict": record.verdict,
        "outcome": outcome(record),
    }


def summaries(metadata_path: str) -> List[dict]:
    """Every run of the workdir, oldest first."""
    return [summary(record) for record in reversed(runs.history(metadata_path))]
