"""The Evaluator's TFMA configuration: the slices, the metrics, the plots and the push gates,
built from config.METRICS, config.PLOTS and config.GATES; and the way back, from a stored
config to the gates it enforces."""

import json
from typing import List

import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_specs

from shopbusy.components.modules import features
from shopbusy.pipeline import config

_DIRECTION = {">=": tfma.MetricDirection.HIGHER_IS_BETTER, "<=": tfma.MetricDirection.LOWER_IS_BETTER}


def _overall(threshold: tfma.MetricThreshold) -> List[tfma.PerSliceMetricThreshold]:
    """A threshold on the overall slice only: a per-class slice has no FPR or FNR to gate."""
    return [tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=threshold)]


def _threshold(metric: config.Metric, gates: config.Gates) -> tfma.MetricThreshold:
    """Every gate on `metric` as one TFMA threshold (empty when none is)."""
    threshold = tfma.MetricThreshold()
    for gate in config.GATES:
        if gate.metric != metric:
            continue
        bound = {"value": gate.bound(gates)}
        if gate.change:  # ignored on the first run, when no blessed model exists yet
            threshold.change_threshold.CopyFrom(
                tfma.GenericChangeThreshold(direction=_DIRECTION[gate.comparison], absolute=bound)
            )
        elif gate.comparison == ">=":
            threshold.value_threshold.CopyFrom(tfma.GenericValueThreshold(lower_bound=bound))
        else:
            threshold.value_threshold.CopyFrom(tfma.GenericValueThreshold(upper_bound=bound))
    return threshold


def eval_config(gates: config.Gates, confidence_intervals: bool = False) -> tfma.EvalConfig:
    """TFMA slices, metrics, plots and the push gates; with TFMA's intervals if asked."""
    metrics = []
    for metric in config.METRICS:
        threshold = _threshold(metric, gates)
        gated = threshold.HasField("value_threshold") or threshold.HasField("change_threshold")
        metrics.append(
            tfma.MetricConfig(
                class_name=metric.class_name,
                module=metric.module,
                config=json.dumps(dict(metric.options)) if metric.options else "",
                per_slice_thresholds=_overall(threshold) if gated else [],
            )
        )
    for plot in config.PLOTS:
        metrics.append(
            tfma.MetricConfig(class_name=plot.class_name, module=plot.module, config=json.dumps(dict(plot.options)))
        )
    return tfma.EvalConfig(
        model_specs=[
            # No preprocessing_function_names: every slice is on raw columns, so TFMA need
            # not run the model's Transform a second time per batch and carry its outputs
            # through every example (bench/notes.md, "Scoring the trees").
            tfma.ModelSpec(signature_name="serving_default", label_key=features.LABEL_KEY)
        ],
        slicing_specs=[tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=keys) for keys in features.SLICE_KEYS],
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)],
        options=_confidence_intervals(confidence_intervals),
    )


def _confidence_intervals(compute: bool) -> tfma.Options:
    """TFMA's own 95 % intervals for every metric of every slice: the delete-d jackknife over
    20 buckets of the eval rows (TFMA 0.47 metrics_plots_and_validations_evaluator.py,
    _DEFAULT_NUM_JACKKNIFE_BUCKETS). TFMA still validates the gates on the point estimates
    (ValueWithTDistribution.__float__ is the unsampled value), so the verdict is unchanged;
    the report says whether each interval also clears its bound."""
    options = tfma.Options()
    options.compute_confidence_intervals.value = compute
    options.confidence_intervals.method = tfma.ConfidenceIntervalOptions.JACKKNIFE
    return options


def gates_of(config_proto: tfma.EvalConfig) -> config.Gates:
    """The gates an eval config enforces: the inverse of eval_config(), so that a finished
    run is reported with the bounds it was judged by, from its stored config."""
    # Keyed by the name TFMA stores the metric under, not its class: runs stored before the
    # Evaluator's own metric classes (components/evaluator_metrics.py) name TFMA's.
    thresholds = {
        metric_specs.metric_instance(metric).name: metric.per_slice_thresholds[0].threshold
        for metric in config_proto.metrics_specs[0].metrics
        if metric.per_slice_thresholds
    }
    values = {}
    for gate in config.GATES:
        threshold = thresholds[gate.metric.key]
        if gate.change:
            value = -threshold.change_threshold.absolute.value
        elif gate.comparison == ">=":
            value = threshold.value_threshold.lower_bound.value
        else:
            value = threshold.value_threshold.upper_bound.value
        values[gate.field] = value
    return config.Gates(**values)
