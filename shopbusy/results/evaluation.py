"""What an Evaluator run decided: each gate's value, bound, baseline and verdict, via TFMA."""

import dataclasses
from typing import Dict, List, Optional, Tuple

import tensorflow_model_analysis as tfma

from shopbusy.pipeline import config

ACCURACY = config.METRIC_BY_CLASS["BinaryAccuracy"].key
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
MetricValues = Dict[Tuple[str, str, bool], float]  # (metric name, model name, is_diff) -> value


def slice_metrics(evaluation_uri: str) -> Dict[SliceKey, MetricValues]:
    """Every slice's metrics, for the candidate, the baseline and their difference."""
    slices = {}
    for metrics in tfma.load_metrics(evaluation_uri):
        key = tuple(
            (k.column, getattr(k, k.WhichOneof("kind"))) for k in metrics.slice_key.single_slice_keys
        )
        slices[key] = {
            (kv.key.name, kv.key.model_name, kv.key.is_diff): kv.value.double_value.value
            for kv in metrics.metric_keys_and_values
        }
    return slices


def candidate_name(metrics: MetricValues) -> str:
    """The candidate's model name: '' without a baseline, 'candidate' with one."""
    return next((model for _, model, diff in metrics if model != BASELINE_MODEL and not diff), "")


def gate_results(evaluation_uri: str, gates: config.Gates) -> List[GateResult]:
    """Every gate of config.GATES at the bounds of `gates` (a run's own, read from its stored
    eval config: runs.RunRecord.gates), judged by TFMA's validation result for the run.
    Change gates only when a baseline was evaluated."""
    metrics = slice_metrics(evaluation_uri)[()]
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
        )
        for gate in config.GATES
        if has_baseline or not gate.change
    ]
