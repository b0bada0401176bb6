"""The Evaluator's AUC and histogram plots keep their calibration histogram in numpy arrays
(components/evaluator_metrics.py): the same histogram as TFMA's own combiner, so the same AUC
and plots as TFMA's own metrics, on the same inputs."""

import pickle
from unittest import mock

import numpy as np
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.evaluators import metrics_plots_and_validations_evaluator
from tensorflow_model_analysis.metrics import (
    binary_confusion_matrices,
    calibration_histogram,
    metric_specs,
    metric_types,
    metric_util,
)

from shopbusy.components import evaluator_metrics
from shopbusy.pipeline import config
from shopbusy.pipeline.eval_config import eval_config
from tests.helpers import with_tfmas_own_classes


def _inputs(rows: int, seed: int):
    """Labels and scores as TFMA hands them to a combiner: one example at a time; scores on
    bucket edges, at 0 and 1 and beyond them, as well as anywhere between."""
    rng = np.random.default_rng(seed)
    scores = np.concatenate([rng.random(rows), [0.0, 1.0, 0.5, 0.25, 0.1234, 1.5, -0.2]])
    labels = (rng.random(len(scores)) < scores).astype(np.float64)
    return [
        metric_types.StandardMetricInputs(labels=np.array([label]), predictions=np.array([score]), example_weights=np.array([1.0]))
        for label, score in zip(labels, scores)
    ]


def _combine(combiner, inputs, parts: int = 3):
    """The combiner over the inputs as Beam runs it: partial accumulators, each compacted and
    pickled across processes, then merged."""
    accumulators = []
    for part in np.array_split(np.arange(len(inputs)), parts):
        accumulator = combiner.create_accumulator()
        for i in part:
            accumulator = combiner.add_input(accumulator, inputs[i])
        accumulators.append(pickle.loads(pickle.dumps(combiner.compact(accumulator))))
    return combiner.extract_output(combiner.merge_accumulators(accumulators))


def _evaluate(proto: tfma.EvalConfig, inputs):
    """TFMA's computations for the eval config's metrics, run by hand: the combiners, then the
    derived results in order."""
    # As TFMA's evaluator does: its computations deduplicated, then combined, then derived.
    computations = metrics_plots_and_validations_evaluator._filter_and_separate_computations(
        metric_specs.to_computations(list(proto.metrics_specs), eval_config=proto)
    )
    results = {}
    for computation in computations.non_derived_computations:
        results.update(_combine(computation.combiner, inputs))
    for computation in computations.derived_computations:
        results.update(computation.result(results))
    return results, computations.non_derived_computations


def test_the_histogram_is_tfmas_bucket_for_bucket():
    inputs = _inputs(5000, seed=0)  # more than one flush of pending inputs per accumulator
    (tfma_computation,) = calibration_histogram.calibration_histogram()
    ours = evaluator_metrics.ArrayHistogramCombiner(tfma_computation.combiner)
    [(key, expected)] = _combine(tfma_computation.combiner, inputs).items()
    [(our_key, got)] = _combine(ours, inputs, parts=4).items()
    assert our_key == key
    assert [b.bucket_id for b in got] == [b.bucket_id for b in expected]
    assert [(b.weighted_labels, b.weighted_examples) for b in got] == [(b.weighted_labels, b.weighted_examples) for b in expected]
    np.testing.assert_allclose([b.weighted_predictions for b in got], [b.weighted_predictions for b in expected], rtol=1e-12)
    assert got[0].bucket_id == 0 and got[-1].bucket_id == tfma_computation.combiner._num_buckets + 1  # below 0, from 1 on


def test_the_confusion_counts_are_tfmas_at_every_threshold():
    inputs = _inputs(5000, seed=2)
    # Fractional labels and example weights too: those tuples come through TFMA's own reader.
    inputs += [
        metric_types.StandardMetricInputs(labels=np.array([0.3]), predictions=np.array([0.6]), example_weights=np.array([2.0])),
        metric_types.StandardMetricInputs(labels=np.array([1.0]), predictions=np.array([0.5]), example_weights=np.array([0.5])),
    ]
    for fractional in (True, False):
        [tfma_computation] = binary_confusion_matrices._binary_confusion_matrix_computation(
            thresholds=[0.0, 0.25, 0.5, 0.9, 1.0], enable_fractional_labels=fractional, example_weighted=True
        )
        ours = evaluator_metrics.ArrayConfusionCombiner(tfma_computation.combiner)
        [(key, expected)] = _combine(tfma_computation.combiner, inputs).items()
        [(our_key, got)] = _combine(ours, inputs, parts=4).items()
        assert our_key == key and list(got) == list(expected)
        for threshold in expected:
            np.testing.assert_allclose(got[threshold].matrix, expected[threshold].matrix, rtol=1e-12)
            assert got[threshold][1:] == expected[threshold][1:]  # no example ids
    empty = evaluator_metrics.ArrayConfusionCombiner(tfma_computation.combiner)
    assert _combine(empty, [], parts=2) == _combine(tfma_computation.combiner, [], parts=2)


def test_the_evaluators_metrics_and_plots_equal_tfmas_own_and_share_one_array_histogram():
    inputs = _inputs(3000, seed=1)
    proto = eval_config(config.Gates())
    ours, computations = _evaluate(proto, inputs)
    theirs, _ = _evaluate(with_tfmas_own_classes(proto), inputs)
    # One histogram, shared by the AUC and both plots, in arrays.
    [histogram] = [c.combiner for c in computations if c.keys[0].name.startswith("_calibration_histogram")]
    assert isinstance(histogram, evaluator_metrics.ArrayHistogramCombiner)
    # The threshold metrics share one confusion-matrix combiner, counting in arrays.
    [matrices] = [c.combiner for c in computations if c.keys[0].name.startswith("_binary_confusion_matrices")]
    assert isinstance(matrices, evaluator_metrics.ArrayConfusionCombiner)
    [counter] = [c.combiner for c in computations if c.keys[0].name == "example_count"]
    assert isinstance(counter, evaluator_metrics.ExampleCounter)
    assert set(ours) == set(theirs) and {"auc", "confusion_matrix_plot", "calibration_plot"} <= {k.name for k in ours}
    for key, expected in theirs.items():
        if key.name == "calibration_plot":
            got, expected = ours[key].buckets, expected.buckets
            assert [(b.lower_threshold_inclusive, b.num_weighted_examples.value, b.total_weighted_label.value) for b in got] == [
                (b.lower_threshold_inclusive, b.num_weighted_examples.value, b.total_weighted_label.value) for b in expected
            ]
            np.testing.assert_allclose(
                [b.total_weighted_refined_prediction.value for b in got],
                [b.total_weighted_refined_prediction.value for b in expected],
                rtol=1e-12,
            )
        elif key.name.startswith("_calibration_histogram"):
            continue  # compared bucket for bucket above
        elif key.name == "confusion_matrix_plot":
            # Bytes, since a threshold where nothing is predicted negative holds nan rates.
            assert ours[key].SerializeToString() == expected.SerializeToString()
        else:
            assert ours[key] == expected, key  # the AUC, every count and rate
    [auc] = [value for key, value in ours.items() if key.name == "auc"]
    assert 0.5 < auc < 1


def _two_models() -> tfma.EvalConfig:
    """A candidate and a baseline, as TFX's Evaluator evaluates them: labels and scores keyed by model."""
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(name="candidate", label_key="class"),
            tfma.ModelSpec(name="baseline", label_key="class", is_baseline=True),
        ]
    )


def _keyed(label, candidate, baseline, weight=None):
    return metric_types.StandardMetricInputs(
        labels={"candidate": label, "baseline": label},
        predictions={"candidate": candidate, "baseline": baseline},
        example_weights=None if weight is None else {"candidate": weight, "baseline": weight},
    )


def _as_floats(tuples):
    return [tuple(np.asarray(value, dtype=np.float64).ravel().tolist() for value in t) for t in tuples]


def test_the_jackknife_does_tfmas_arithmetic_on_the_derived_matrices_in_arrays():
    """With intervals, TFMA's jackknife takes a standard error of every structured value, the
    derived confusion matrices included (dropped afterwards as private). Ours hold them as
    ArrayArithmeticMatrices, whose arithmetic is numpy's: the same numbers as TFMA's loop over
    the thresholds, and the same public metrics."""
    from tensorflow_model_analysis.evaluators import confidence_intervals_util, jackknife

    inputs, buckets = _inputs(400, seed=3), 20
    proto = eval_config(config.Gates())
    # The full sample and the twenty delete-one-bucket samples, as jackknife.py at v0.47.0 has them.
    in_bucket = np.arange(len(inputs)) % buckets
    samples = [(jackknife._FULL_SAMPLE_ID, inputs)] + [
        (bucket, [x for x, b in zip(inputs, in_bucket) if b != bucket]) for bucket in range(buckets)
    ]
    ours = [confidence_intervals_util.SampleMetrics(_evaluate(proto, rows)[0], sample_id) for sample_id, rows in samples]
    matrices_keys = [k for k in ours[0].metrics if k.name.startswith(binary_confusion_matrices.BINARY_CONFUSION_MATRICES_NAME)]
    assert matrices_keys and all(type(ours[0].metrics[k]) is evaluator_metrics.ArrayArithmeticMatrices for k in matrices_keys)

    def as_tfmas(metrics):
        return {k: binary_confusion_matrices.Matrices(*v) if k in matrices_keys else v for k, v in metrics.items()}

    theirs = [confidence_intervals_util.SampleMetrics(as_tfmas(s.metrics), s.sample_id) for s in ours]

    def intervals(samples):
        combine = jackknife._JackknifeSampleCombineFn(buckets)
        accumulator = combine.create_accumulator()
        for sample in samples:
            accumulator = combine.add_input(accumulator, sample)
        return combine.extract_output(accumulator)

    got, expected = intervals(ours), intervals(theirs)
    assert set(got) == set(expected)
    for key in matrices_keys:
        assert type(got[key].sample_mean) is evaluator_metrics.ArrayArithmeticMatrices  # our arithmetic ran
        for field in ("sample_mean", "sample_standard_deviation"):
            mine, tfmas = getattr(got[key], field), getattr(expected[key], field)
            assert mine.thresholds == tfmas.thresholds
            np.testing.assert_allclose(np.array(mine[1:]), np.array(tfmas[1:]), rtol=1e-12, atol=0, err_msg=f"{key} {field}")
        assert got[key].unsampled_value == expected[key].unsampled_value
    for key in set(got) - set(matrices_keys):
        if hasattr(expected[key], "SerializeToString"):  # a plot: bytes, as nan rates never compare equal
            assert got[key].SerializeToString() == expected[key].SerializeToString(), key
        else:
            assert got[key] == expected[key], key  # every public metric and its interval

    # Other thresholds: TFMA's own merge of the two threshold lists, kept as ArrayArithmeticMatrices.
    fine, coarse = ([0.1, 0.5], [1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]), ([0.5], [1.5], [2.5], [3.5], [4.5])
    merged = evaluator_metrics.ArrayArithmeticMatrices(*fine) - evaluator_metrics.ArrayArithmeticMatrices(*coarse)
    assert type(merged) is evaluator_metrics.ArrayArithmeticMatrices
    assert tuple(merged) == tuple(binary_confusion_matrices.Matrices(*fine) - binary_confusion_matrices.Matrices(*coarse))


def test_examples_are_read_as_tfmas_own_function_reads_them():
    two = _two_models()
    simple = [  # the Evaluator's case: answered without TFMA's function
        (None, metric_types.StandardMetricInputs(labels=np.array([1.0]), predictions=np.array([0.7]), example_weights=np.array([1.0])), {}),
        (None, metric_types.StandardMetricInputs(labels=np.array([[0]]), predictions=np.array([[0.2]], np.float32)), {}),
        (None, metric_types.StandardMetricInputs(labels=np.array([1]), predictions=np.array([1.5])), {"fractional_labels": True}),
        (two, _keyed(np.array([1]), np.array([0.7], np.float32), np.array([0.4], np.float32)), {"model_name": "candidate"}),
        (two, _keyed(np.array([0]), np.array([0.7], np.float32), np.array([0.4], np.float32)), {"model_name": "baseline", "fractional_labels": True}),
    ]
    other = [  # anything else: TFMA's function
        (None, metric_types.StandardMetricInputs(labels=np.array([0.3]), predictions=np.array([0.7])), {"fractional_labels": True}),
        (None, metric_types.StandardMetricInputs(labels=np.array([1]), predictions=np.array([0.2, 0.8])), {}),
        (None, metric_types.StandardMetricInputs(labels=np.array([1]), predictions=np.array([np.nan])), {}),
        (two, _keyed(np.array([1]), np.array([0.7]), np.array([0.4]), weight=np.array([2.0])), {"model_name": "candidate", "example_weighted": True}),
        (None, metric_types.StandardMetricInputs(labels=np.array([1]), predictions=np.array([0.6])), {"sub_key": metric_types.SubKey(top_k=1)}),
    ]
    for cases, tfma_calls in ((simple, 0), (other, len(other))):
        with mock.patch.object(metric_util, "to_label_prediction_example_weight", wraps=metric_util.to_label_prediction_example_weight) as tfmas:
            for proto, inputs, kwargs in cases:
                expected = list(tfmas(inputs, eval_config=proto, flatten=True, **kwargs))
                tfmas.reset_mock()
                got = evaluator_metrics.LabelPredictionWeight(proto)(inputs, flatten=True, **kwargs)
                np.testing.assert_equal(_as_floats(got), _as_floats(expected), err_msg=str((inputs, kwargs)))  # nan equals nan
                assert tfmas.call_count == (0 if tfma_calls == 0 else 1), (inputs, kwargs)


def test_each_example_is_read_once_per_model_however_many_slices_and_combiners_take_it():
    """TFMA hands one inputs object to every combiner of every slice the example is in: the
    array combiners read its label and score once per model, and a new object is read anew."""
    two = _two_models()
    (histogram,) = calibration_histogram.calibration_histogram(eval_config=two, model_name="candidate")
    (confusion,) = binary_confusion_matrices._binary_confusion_matrix_computation(eval_config=two, model_name="candidate", thresholds=[0.5])
    (baseline,) = calibration_histogram.calibration_histogram(eval_config=two, model_name="baseline")
    combiners = [
        evaluator_metrics.ArrayHistogramCombiner(histogram.combiner),
        evaluator_metrics.ArrayConfusionCombiner(confusion.combiner),
        evaluator_metrics.ArrayHistogramCombiner(baseline.combiner),
    ]
    examples = [_keyed(np.array([label]), np.array([score], np.float32), np.array([1 - score], np.float32)) for label, score in ((1, 0.75), (0, 0.25))]
    slices = [[c.create_accumulator() for c in combiners] for _ in range(5)]
    with mock.patch.object(evaluator_metrics.LabelPredictionWeight, "_simple", autospec=True, side_effect=evaluator_metrics.LabelPredictionWeight._simple) as reads:
        for example in examples + [_keyed(np.array([1]), np.array([0.75], np.float32), np.array([0.25], np.float32))]:
            for accumulators in slices:
                for i, combiner in enumerate(combiners):
                    accumulators[i] = combiner.add_input(accumulators[i], example)
    assert reads.call_count == 3 * 2  # three examples (the last equal to the first, not the same object), two models
    candidate_histogram = combiners[0].extract_output(slices[0][0])
    [(_, buckets)] = candidate_histogram.items()
    assert sum(b.weighted_examples for b in buckets) == 3 and sum(b.weighted_labels for b in buckets) == 2
    [(_, matrices)] = combiners[1].extract_output(slices[4][1]).items()
    assert tuple(matrices[0.5].matrix) == (2.0, 1.0, 0.0, 0.0)  # tp, tn, fp, fn: 0.75 and 0.75 busy, 0.25 not
    [(_, buckets)] = combiners[2].extract_output(slices[2][2]).items()
    assert sorted(round(b.weighted_predictions, 6) for b in buckets) == [0.5, 0.75]  # the baseline's scores: 0.25 twice, 0.75
