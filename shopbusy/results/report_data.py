"""The slice report's numbers as data: REPORT_ROOT/<run>/report.json beside the page, for
scripts, dashboards and notebooks that would otherwise scrape the HTML.

Every metric is {"value", "lower", "upper"} (TFMA's point estimate and 95 % interval; the
bounds null where TFMA computed none, as for counts), or {"value": null, "reason"} where the
metric does not exist for the slice (evaluation.undefined_reason).
"""

import dataclasses
import math
from typing import Dict, Optional

from shopbusy.pipeline import config
from shopbusy.results import evaluation, runs

FORMAT_VERSION = 1
JACKKNIFE_BUCKETS = 20  # TFMA 0.47's _DEFAULT_NUM_JACKKNIFE_BUCKETS (pipeline/eval_config.py)


def _measured(value: float, interval: Optional[evaluation.Interval]) -> dict:
    lower, upper = interval if interval else (None, None)
    return {"value": value, "lower": lower, "upper": upper}


def _metrics(values: Dict[str, Optional[float]], undefined: Dict[str, str], intervals, model: str, is_diff=False) -> dict:
    return {
        metric.key: (
            {"value": None, "reason": undefined[metric.key]}
            if metric.key in undefined
            else _measured(values[metric.key], intervals.get((metric.key, model, is_diff)))
        )
        for metric in config.METRICS
        if values.get(metric.key) is not None or metric.key in undefined
    }


def _slice(
    key, metrics: evaluation.MetricValues, intervals: evaluation.MetricIntervals, candidate: str, has_baseline: bool,
    interval_error: Optional[str] = None,
) -> dict:
    values, undefined = evaluation.defined_values(metrics, candidate)
    entry = {
        "slice": {column: value.decode() if isinstance(value, bytes) else value for column, value in key},
        "example_count": values.get("example_count"),
        "metrics": _metrics(values, undefined, intervals, candidate),
    }
    if interval_error:  # intervals were asked for and TFMA computed none here: its reason
        entry["interval_error"] = interval_error
    if has_baseline:
        baseline_values, baseline_undefined = evaluation.defined_values(metrics, evaluation.BASELINE_MODEL)
        entry["baseline"] = _metrics(baseline_values, baseline_undefined, intervals, evaluation.BASELINE_MODEL)
        differences = evaluation.model_values(metrics, candidate, is_diff=True)
        both = {k: v for k, v in differences.items() if k not in undefined and k not in baseline_undefined}
        entry["difference"] = _metrics(both, {}, intervals, candidate, is_diff=True)
    return entry


def as_data(record: runs.RunRecord) -> dict:
    """Everything the page states as numbers: the run, the gates, every slice, the baseline
    comparison and the exported candidate."""
    data = {
        "format_version": FORMAT_VERSION,
        "run_id": record.run_id,
        "started": record.started.isoformat(),
        "verdict": record.verdict,
        "blessed": record.blessed,
        "pushed_version": record.pushed_version,
        "span": record.span,
        "training_spans": record.training_spans,
        "input": {"path": record.data_path, **(record.input_size or {})},  # files and bytes ExampleGen read
        "confidence_intervals": None,  # or how TFMA computed them, when it did
        "gates": [],
        "slices": [],
        "plots": None,  # or the overall slice's threshold and calibration plots, when TFMA computed them
        "model": None,
    }
    if record.evaluation_uri:
        slices = evaluation.slice_metrics(record.evaluation_uri)
        intervals = evaluation.slice_intervals(record.evaluation_uri)
        interval_errors = evaluation.slice_interval_errors(record.evaluation_uri)
        if any(intervals.values()) or interval_errors:
            data["confidence_intervals"] = {"level": 0.95, "method": "jackknife", "buckets": JACKKNIFE_BUCKETS}
        candidate = evaluation.candidate_name(slices[()])
        has_baseline = bool(candidate)  # the candidate is named only beside a baseline
        data["gates"] = [
            {**dataclasses.asdict(gate), "difference": gate.difference, "interval_clears": gate.interval_clears}
            for gate in evaluation.gate_results(record.evaluation_uri, record.gates)
        ]
        data["slices"] = [
            _slice(key, slices[key], intervals.get(key, {}), candidate, has_baseline, interval_errors.get(key))
            for key in sorted(slices, key=_order)
        ]
        data["plots"] = _plots(record, candidate)
    if record.candidates:
        data["model"] = {"exported": record.chosen_candidate, "members": record.ensemble_members, "refit": record.refit, "candidates": record.candidates}
    return _json_safe(data)


def _plots(record: runs.RunRecord, candidate: str) -> Optional[dict]:
    """The candidate's plots on the overall slice: each threshold's confusion counts, rates
    and gate verdicts, and the calibration buckets."""
    plots = evaluation.slice_plots(record.evaluation_uri).get(candidate)
    if plots is None:
        return None
    verdicts = evaluation.gates_at_thresholds(plots.thresholds, record.gates)
    return {
        "decision_threshold": config.DECISION_THRESHOLD,
        "thresholds": [{**row, "gates_pass": verdict["passes"]} for row, verdict in zip(plots.thresholds, verdicts)],
        "calibration": plots.calibration,
    }


def _json_safe(value):
    """JSON has no nan: a number TFMA left undefined that no rule above caught becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _order(key: evaluation.SliceKey):
    """Overall first, then by columns and values, as the page lists them."""
    return (len(key), [(column, str(value)) for column, value in key])
