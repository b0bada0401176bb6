"""The TFMA eval config, built from the one table of metrics and gates (config.METRICS,
config.GATES): the slices, real TFMA metrics under the keys we read them by, and gates on the
overall slice only, read back exactly from a stored config."""

import dataclasses
import importlib

import pytest
import tensorflow_model_analysis as tfma
from google.protobuf import json_format

from shopbusy.cli import common
from shopbusy.components.modules.features import CSV_COLUMNS, LABEL_KEY
from shopbusy.pipeline import config
from shopbusy.pipeline.eval_config import eval_config, gates_of
from tests.helpers import with_tfmas_own_classes

GATES = config.Gates(min_accuracy=0.8, max_fpr=0.25, max_fnr=0.15, max_accuracy_drop=0.02)


def _thresholds(eval_config_proto):
    return {
        metric.class_name: list(metric.per_slice_thresholds)
        for metric in eval_config_proto.metrics_specs[0].metrics
        if metric.per_slice_thresholds
    }


def test_slices_overall_shop_type_weekday_class_and_the_cross():
    specs = [tuple(spec.feature_keys) for spec in eval_config(GATES).slicing_specs]
    assert specs == [(), ("shop_type",), ("weekday",), (LABEL_KEY,), ("shop_type", "weekday")]


def test_every_metric_and_plot_is_a_tfma_metric_stored_under_the_key_the_readers_use():
    proto = eval_config(GATES)
    assert [m.class_name for m in proto.metrics_specs[0].metrics] == [m.class_name for m in (*config.METRICS, *config.PLOTS)]
    for metric in (*config.METRICS, *config.PLOTS):
        module = importlib.import_module(metric.module) if metric.module else tfma.metrics
        assert getattr(module, metric.class_name)().name == metric.key, metric
    (model_spec,) = proto.model_specs
    assert model_spec.label_key == LABEL_KEY
    assert model_spec.signature_name == "serving_default"
    # Every slice is on raw columns, so TFMA is not asked to run the model's Transform again.
    assert not model_spec.preprocessing_function_names
    assert {key for spec in proto.slicing_specs for key in spec.feature_keys} <= set(CSV_COLUMNS)


def test_every_gates_field_is_one_gate_on_a_reported_metric_with_its_own_flag():
    assert sorted(g.field for g in config.GATES) == sorted(f.name for f in dataclasses.fields(config.Gates))
    assert all(g.metric in config.METRICS and g.comparison in (">=", "<=") for g in config.GATES)
    args = common.pipeline_flags().parse_args(
        [arg for g in config.GATES for arg in (g.flag, str(getattr(GATES, g.field)))]
    )
    assert common.gates_from(args) == GATES


def test_gates_sit_on_the_overall_slice_only_with_the_given_bounds():
    thresholds = _thresholds(eval_config(GATES))
    assert set(thresholds) == {g.metric.class_name for g in config.GATES}
    for per_slice in thresholds.values():
        assert len(per_slice) == 1 and list(per_slice[0].slicing_specs) == [tfma.SlicingSpec()]
    accuracy = thresholds[config.METRIC_BY_KEY["binary_accuracy"].class_name][0].threshold
    assert accuracy.value_threshold.lower_bound.value == GATES.min_accuracy
    assert accuracy.change_threshold.absolute.value == -GATES.max_accuracy_drop
    assert accuracy.change_threshold.direction == tfma.MetricDirection.HIGHER_IS_BETTER
    assert thresholds[config.METRIC_BY_KEY["fall_out"].class_name][0].threshold.value_threshold.upper_bound.value == GATES.max_fpr
    assert thresholds[config.METRIC_BY_KEY["miss_rate"].class_name][0].threshold.value_threshold.upper_bound.value == GATES.max_fnr


@pytest.mark.parametrize("gates", [GATES, config.Gates(), config.Gates(0.5, 0.4, 0.3, 0.2)])
def test_gates_read_back_from_a_stored_config_are_the_gates_that_made_it(gates):
    stored = json_format.MessageToJson(eval_config(gates))  # as the Evaluator's execution property holds it
    assert gates_of(json_format.Parse(stored, tfma.EvalConfig())) == gates


def test_gates_read_back_from_a_config_stored_with_tfmas_class_names():
    """Runs recorded before the Evaluator's own metric classes name TFMA's (BinaryAccuracy,
    FallOut, MissRate); their report still shows the gates they were judged by."""
    proto = with_tfmas_own_classes(eval_config(GATES))
    assert {"BinaryAccuracy", "FallOut", "MissRate"} <= {m.class_name for m in proto.metrics_specs[0].metrics}
    stored = json_format.MessageToJson(proto)
    assert gates_of(json_format.Parse(stored, tfma.EvalConfig())) == GATES


def test_tfma_computes_its_own_confidence_intervals_and_gates_on_point_estimates():
    assert eval_config(GATES).options.compute_confidence_intervals.value is False  # `run --intervals` asks
    options = eval_config(GATES, confidence_intervals=True).options
    assert options.compute_confidence_intervals.value is True
    assert options.confidence_intervals.method == tfma.ConfidenceIntervalOptions.JACKKNIFE
    # TFMA's validator calls float() on a metric; with intervals that is the point estimate.
    from tensorflow_model_analysis.api import types

    value = types.ValueWithTDistribution(sample_mean=0.80, sample_standard_deviation=0.02, sample_degrees_of_freedom=19, unsampled_value=0.86)
    assert float(value) == 0.86


def test_the_plots_share_the_aucs_calibration_histogram_and_mark_the_decision_threshold():
    """The threshold and calibration plots cost no pass over the examples of their own: TFMA
    deduplicates computations by key, and theirs is the histogram the AUC already needs."""
    from tensorflow_model_analysis.metrics import metric_specs

    computations = metric_specs.to_computations(
        metric_specs.specs_from_metrics([]) + list(eval_config(GATES).metrics_specs), eval_config=eval_config(GATES)
    )
    histograms = {key.name for c in computations for key in c.keys if key.name.startswith("_calibration_histogram")}
    assert len(histograms) == 1, histograms
    # ... kept in numpy arrays, not in TFMA's dict of Bucket objects (components/evaluator_metrics.py).
    combiners = {type(c.combiner).__name__ for c in computations for key in c.keys if key.name in histograms}
    assert combiners == {"ArrayHistogramCombiner"}, combiners
    options = {plot.key: dict(plot.options) for plot in config.PLOTS}
    steps = options["confusion_matrix_plot"]["num_thresholds"]
    assert config.DECISION_THRESHOLD in [i / steps for i in range(steps + 1)]
