"""The TFMA eval config: the slices, the metrics and gates on the overall slice only."""

import tensorflow_model_analysis as tfma

from components.modules.features import LABEL_KEY
from pipeline import config
from pipeline.pipeline import REPORTED_METRICS, eval_config, gates_of

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


def test_metrics_and_model_spec():
    proto = eval_config(GATES)
    assert [m.class_name for m in proto.metrics_specs[0].metrics] == REPORTED_METRICS
    (model_spec,) = proto.model_specs
    assert model_spec.label_key == LABEL_KEY
    assert model_spec.signature_name == "serving_default"
    assert list(model_spec.preprocessing_function_names) == ["transform_features"]


def test_gates_sit_on_the_overall_slice_only_with_the_given_bounds():
    thresholds = _thresholds(eval_config(GATES))
    assert set(thresholds) == {"BinaryAccuracy", "FallOut", "MissRate"}
    for per_slice in thresholds.values():
        assert len(per_slice) == 1 and list(per_slice[0].slicing_specs) == [tfma.SlicingSpec()]
    accuracy = thresholds["BinaryAccuracy"][0].threshold
    assert accuracy.value_threshold.lower_bound.value == 0.8
    assert accuracy.change_threshold.absolute.value == -0.02
    assert accuracy.change_threshold.direction == tfma.MetricDirection.HIGHER_IS_BETTER
    assert thresholds["FallOut"][0].threshold.value_threshold.upper_bound.value == 0.25
    assert thresholds["MissRate"][0].threshold.value_threshold.upper_bound.value == 0.15


def test_gates_read_back_from_a_config_are_the_gates_that_made_it():
    assert gates_of(eval_config(GATES)) == GATES
    assert gates_of(eval_config(config.Gates())) == config.Gates()
