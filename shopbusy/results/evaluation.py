"""What an Evaluator run decided: each gate's value, bound, baseline and verdict, via TFMA."""

import dataclasses
import math
from typing import Dict, List, Optional, Tuple

import tensorflow_model_analysis as tfma

from shopbusy.pipeline import config

ACCURACY = next(gate.metric.key for gate in config.GATES if gate.field == "min_accuracy")  # the accuracy gate's metric
BASELINE_MODEL = "baseline"


@dataclasses.dataclass
class GateResult:
    """One gate on the overall slice."""

    name: str
    value: Optional[float]
    comparison: str  # ">=" or "<="
    bound: float
    baseline: Optional[float]
    passed: bool
    message: str = ""
    is_change: bool = False  # value is the candidate's difference to the baseline
    interval: Optional[Tuple[float, float]] = None  # TFMA's 95 % interval of the value

    @property
    def interval_clears(self) -> Optional[bool]:
        """Whether the whole interval is on the passing side of the bound (None without one).
        TFMA judges the gate on the point estimate; this says how sure that verdict is."""
        if self.interval is None:
            return None
        lower, upper = self.interval
        return lower >= self.bound if self.comparison == ">=" else upper <= self.bound

    @property
    def difference(self) -> Optional[float]:
        """Candidate minus baseline; for a change gate that is the value itself."""
        if self.baseline is None or self.value is None:
            return None
        return self.value if self.is_change else self.value - self.baseline

    def describe(self) -> str:
        value = "n/a" if self.value is None else f"{self.value:.4f}"
        baseline = "" if self.baseline is None else f" (baseline {self.baseline:.4f})"
        verdict = "pass" if self.passed else f"FAIL {self.message}".rstrip()
        return f"{self.name:<28} {value:>8} {self.comparison} {self.bound:<6g}{baseline}  {verdict}"


SliceKey = Tuple[Tuple[str, object], ...]  # ((column, value), ...); () is the overall slice
MetricId = Tuple[str, str, bool]  # (metric name, model name, is_diff)
MetricValues = Dict[MetricId, float]
Interval = Tuple[float, float]  # TFMA's 95 % confidence interval: lower, upper
MetricIntervals = Dict[MetricId, Interval]


def _slice_key(metrics) -> SliceKey:
    return tuple((k.column, getattr(k, k.WhichOneof("kind"))) for k in metrics.slice_key.single_slice_keys)


def _metric_id(kv) -> MetricId:
    return (kv.key.name, kv.key.model_name, kv.key.is_diff)


def slice_metrics(evaluation_uri: str) -> Dict[SliceKey, MetricValues]:
    """Every slice's metrics (TFMA's point estimates), for the candidate, the baseline and
    their difference. Numbers only: TFMA also stores a message under `__ERROR__` in a slice
    it computed no interval for (slice_interval_errors)."""
    return {
        _slice_key(metrics): {
            _metric_id(kv): kv.value.double_value.value
            for kv in metrics.metric_keys_and_values
            if kv.value.WhichOneof("type") == "double_value"
        }
        for metrics in tfma.load_metrics(evaluation_uri)
    }


def slice_intervals(evaluation_uri: str) -> Dict[SliceKey, MetricIntervals]:
    """Every slice's 95 % confidence intervals, where TFMA computed them (the eval config's
    compute_confidence_intervals; not for counts, and not in runs from before it was set)."""
    return {
        _slice_key(metrics): {
            _metric_id(kv): (kv.confidence_interval.lower_bound.double_value.value, kv.confidence_interval.upper_bound.double_value.value)
            for kv in metrics.metric_keys_and_values
            if kv.HasField("confidence_interval")
        }
        for metrics in tfma.load_metrics(evaluation_uri)
    }


def slice_interval_errors(evaluation_uri: str) -> Dict[SliceKey, str]:
    """TFMA's own reason, for each slice it was asked for intervals of and computed none
    (its jackknife stores it under `__ERROR__`, e.g. "CI not computed because only 16 samples
    were non-empty. Expected 20.")."""
    return {
        _slice_key(metrics): kv.value.bytes_value.decode(errors="replace")
        for metrics in tfma.load_metrics(evaluation_uri)
        for kv in metrics.metric_keys_and_values
        if kv.key.name == tfma.constants.ERROR_METRIC_NAME
    }


def _rate(numerator: float, denominator: float) -> Optional[float]:
    return numerator / denominator if denominator else None


def threshold_row(threshold: float, tp: float, fp: float, tn: float, fn: float) -> Dict[str, Optional[float]]:
    """The confusion counts at one decision threshold and the config.METRICS rates they give,
    under the same keys; a rate is None where it does not exist (no positives, say)."""
    return {
        "threshold": threshold,
        "true_positives": tp, "false_positives": fp, "true_negatives": tn, "false_negatives": fn,
        "binary_accuracy": _rate(tp + tn, tp + fp + tn + fn),
        "precision": _rate(tp, tp + fp),
        "recall": _rate(tp, tp + fn),
        "fall_out": _rate(fp, fp + tn),
        "miss_rate": _rate(fn, fn + tp),
    }  # fmt: skip


@dataclasses.dataclass
class Plots:
    """One model's TFMA plots for one slice (config.PLOTS)."""

    thresholds: List[Dict[str, Optional[float]]]  # threshold_row() per threshold, ascending
    calibration: List[Dict[str, float]]  # non-empty buckets: lower, upper, examples, mean_prediction, observed_rate


def slice_plots(evaluation_uri: str, slice_key: SliceKey = ()) -> Dict[str, Plots]:
    """The plots TFMA computed for one slice (config.PLOTS), by model name ('' or
    'candidate', 'baseline'); empty for runs from before the eval config asked for plots.
    TFMA 0.47's writer stores a model's plots in one PlotData under a key without the plot's
    name (metrics_plots_and_validations_writer.convert_slice_plots_to_proto), so each is
    told by the field it fills."""
    found: Dict[str, Plots] = {}
    for plots in tfma.load_plots(evaluation_uri):
        if _slice_key(plots) != slice_key:
            continue
        for kv in plots.plot_keys_and_values:
            model = found.setdefault(kv.key.model_name, Plots([], []))
            if kv.value.HasField("confusion_matrix_at_thresholds"):
                model.thresholds = [
                    threshold_row(m.threshold, m.true_positives, m.false_positives, m.true_negatives, m.false_negatives)
                    for m in kv.value.confusion_matrix_at_thresholds.matrices
                    if 0 <= m.threshold <= 1  # not TFMA's -1e-6 catch-all below every score
                ]
            if kv.value.HasField("calibration_histogram_buckets"):
                model.calibration = [
                    {
                        "lower": max(b.lower_threshold_inclusive, 0.0),
                        "upper": min(b.upper_threshold_exclusive, 1.0),
                        "examples": b.num_weighted_examples.value,
                        "mean_prediction": b.total_weighted_refined_prediction.value / b.num_weighted_examples.value,
                        "observed_rate": b.total_weighted_label.value / b.num_weighted_examples.value,
                    }
                    for b in kv.value.calibration_histogram_buckets.buckets
                    if b.num_weighted_examples.value > 0
                ]
    return {model: plots for model, plots in found.items() if plots.thresholds or plots.calibration}


def gates_at_thresholds(rows: List[Dict[str, Optional[float]]], gates: config.Gates) -> List[Dict[str, object]]:
    """Per threshold of a confusion-matrix plot, whether each gate on the candidate alone
    (not the change gate, which needs the baseline's own counts) would pass there."""
    judged = [gate for gate in config.GATES if not gate.change]
    verdicts = []
    for row in rows:
        passes = {}
        for gate in judged:
            value = row.get(gate.metric.key)
            bound = gate.bound(gates)
            passes[gate.label] = value is not None and (value >= bound if gate.comparison == ">=" else value <= bound)
        verdicts.append({"threshold": row["threshold"], "passes": passes, "all_pass": all(passes.values())})
    return verdicts


def model_values(metrics: MetricValues, model: str, is_diff: bool = False) -> Dict[str, Optional[float]]:
    """One model's value (or its difference to the baseline) of every config.METRICS metric."""
    return {metric.key: metrics.get((metric.key, model, is_diff)) for metric in config.METRICS}


def undefined_reason(metric: config.Metric, values: Dict[str, Optional[float]]) -> Optional[str]:
    """Why `metric` does not exist for a slice whose model values (confusion counts
    included) are `values`, or None when it does: AUC with one class, precision with no
    example predicted busy. TFMA stores 0 or nan there, which is not a measurement."""
    for cells, reason in metric.needs:
        counts = [values.get(cell) for cell in cells]
        if all(count is not None for count in counts) and sum(counts) == 0:
            return reason
    value = values.get(metric.key)
    if value is not None and math.isnan(value):
        return "not a number"
    return None


def defined_values(metrics: MetricValues, model: str) -> Tuple[Dict[str, Optional[float]], Dict[str, str]]:
    """A model's values with undefined metrics as None, and each undefined metric's reason."""
    values = model_values(metrics, model)
    reasons = {m.key: r for m in config.METRICS if (r := undefined_reason(m, values))}
    return {k: (None if k in reasons else v) for k, v in values.items()}, reasons


def candidate_name(metrics: MetricValues) -> str:
    """The candidate's model name: '' without a baseline, 'candidate' with one."""
    return next((model for _, model, diff in metrics if model != BASELINE_MODEL and not diff), "")


def gate_results(evaluation_uri: str, gates: config.Gates) -> List[GateResult]:
    """Every gate of config.GATES at the bounds of `gates` (a run's own, read from its stored
    eval config: runs.RunRecord.gates), judged by TFMA's validation result for the run.
    Change gates only when a baseline was evaluated."""
    metrics = slice_metrics(evaluation_uri)[()]
    intervals = slice_intervals(evaluation_uri).get((), {})
    has_baseline = any(model == BASELINE_MODEL for _, model, _ in metrics)
    candidate = candidate_name(metrics)
    failures = {}
    validation = tfma.load_validation_result(evaluation_uri)
    for per_slice in validation.metric_validations_per_slice:
        for failure in per_slice.failures:
            failures[(failure.metric_key.name, failure.metric_key.is_diff)] = failure.message
    return [
        GateResult(
            name=gate.label,
            value=metrics.get((gate.metric.key, candidate, gate.change)),
            comparison=gate.comparison,
            bound=gate.bound(gates),
            baseline=metrics.get((gate.metric.key, BASELINE_MODEL, False)) if has_baseline else None,
            passed=(gate.metric.key, gate.change) not in failures,
            message=failures.get((gate.metric.key, gate.change), ""),
            is_change=gate.change,
            interval=intervals.get((gate.metric.key, candidate, gate.change)),
        )
        for gate in config.GATES
        if has_baseline or not gate.change
    ]
