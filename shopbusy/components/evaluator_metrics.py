"""TFMA's AUC, its two histogram plots and its nine threshold metrics, each with its shared
accumulator held in numpy arrays and each example read directly.

TFMA 0.47 derives the AUC, the confusion-matrix plot and the calibration plot of every slice
and model from one 10,000-bucket calibration histogram (metrics/calibration_histogram.py at
v0.47.0, `_CalibrationHistogramCombiner`). Its accumulator is a dict of `Bucket` dataclass
objects, about 290 bytes a filled bucket in memory (2.85 MB for 10,000). At a million rows
the Evaluator's peak is those accumulators: 170 slices, two models, merged in the runner and
the workers at the end (bench/notes.md, "The Evaluator's peak is the histograms"). TFMA
takes no other accumulator through its EvalConfig, and its bucket count is a module constant
that the derived metrics also read as a default argument, so it cannot be lowered from
outside. The nine threshold metrics share one confusion-matrix combiner at the threshold 0.5
(metrics/binary_confusion_matrices.py, `_BinaryConfusionMatrixCombiner`), whose accumulator
is a dict of named tuples rebuilt for every example.

Both read each example's label, prediction and weight through TFMA's generic
`metric_util.to_label_prediction_example_weight`, once per example, slicing spec, model and
computation: 60.6 s of a 144 s Evaluator under cProfile at 300,000 rows (bench/notes.md,
"Reading each example once, directly"). `LabelPredictionWeight` answers the one case this
Evaluator has (a 0/1 label and one score per example, no weights, sub keys or class
weights) directly and hands every other case to TFMA's function. In that case both array
combiners share one read of each example per model (`LabelPredictionWeight.label_and_score`),
not one per slicing spec and combiner: at 100,000 rows the Evaluator's work took 37-44 s
against 48-53 s (bench/notes.md, "One read per example").

The classes here are TFMA's own metrics with those two combiners swapped
(`with_array_accumulators`): `ArrayHistogramCombiner` and `ArrayConfusionCombiner` take the
same tuples, count them the same way and hand TFMA's derived computations the same objects
under the same keys. Everything after that (rebinning, the AUC, the rates, both plots, their
protos, the jackknife intervals) is TFMA's code, unchanged, except that the confusion
matrices derived from them do their arithmetic in numpy (`ArrayArithmeticMatrices`): with
intervals, TFMA's jackknife spends most of its time adding and subtracting them threshold
by threshold, for values it then drops.
"""

import math
import threading
from array import array
from typing import Dict, Iterable

import apache_beam as beam
import numpy as np
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.contrib.aggregates import binary_confusion_matrices as bcm_aggregates
from tensorflow_model_analysis.metrics import (
    binary_confusion_matrices,
    calibration_histogram,
    example_count,
    metric_types,
    metric_util,
)

# What one tuple adds to its bucket, in the accumulator's rows.
_COUNT, _LABELS, _PREDICTIONS, _EXAMPLES = range(4)
# Inputs wait until this many, then go into the arrays at once. They wait as flat doubles
# (array.array), 8 bytes a value, not as tuples of floats (143-176 bytes an input, tracemalloc):
# every slice's accumulator holds up to this many, in every worker.
_PENDING = 4096


class _Histogram:
    """The accumulator: the filled buckets' ids (sorted) and, per bucket, the tuple count and
    the weighted labels, predictions and examples; plus inputs not yet added. Sparse, like
    TFMA's dict, so that a small slice's partial accumulator stays small."""

    __slots__ = ("ids", "sums", "pending")

    def __init__(self):
        self.ids = np.zeros(0, np.int64)
        self.sums = np.zeros((4, 0))
        self.pending = array("d")  # per input: the value bucketed, label, prediction, weight

    def __getstate__(self):
        return self.ids, self.sums, self.pending

    def __setstate__(self, state):
        self.ids, self.sums, self.pending = state


def _added(ids: np.ndarray, rows: np.ndarray, num_ids: int):
    """The ids that occur and the rows summed per id, given each row's id."""
    dense = np.stack([np.bincount(ids, weights=row, minlength=num_ids) for row in rows])
    filled = np.flatnonzero(dense[_COUNT])
    return filled, dense[:, filled]


_UNIT_WEIGHT = np.array([1.0])


class _LastRead(threading.local):
    """The inputs object read last in this thread, and its (label, score) per model."""

    def __init__(self):
        self.inputs = None
        self.values = {}


_LAST_READ = _LastRead()


class LabelPredictionWeight:
    """TFMA's `metric_util.to_label_prediction_example_weight` (v0.47.0), called the same way,
    with the same result: the (label, prediction, example weight) tuples of one example.

    Answered here when the example is what this pipeline's Evaluator hands every metric: a
    numeric label of exactly 0 or 1 and one finite score, found under the model's name or
    directly, with no prediction key, output name, sub key, aggregation, class weights or
    example weights asked for. TFMA then yields that label and score with a weight of 1
    (with fractional labels, the tuple of weight 0 is dropped). Anything else goes to TFMA's
    function: this is a short cut, not a second implementation."""

    def __init__(self, eval_config):
        self._eval_config = eval_config
        self._keys = {}  # model name -> (label key, prediction key), as TFMA finds them

    def _model_keys(self, model_name: str):
        if model_name not in self._keys:
            keys = ("", "")
            specs = self._eval_config.model_specs if self._eval_config else []
            for spec in specs:
                if (spec.name if len(specs) > 1 else "") == model_name:
                    keys = (spec.label_key, spec.prediction_key)
                    break
            self._keys[model_name] = keys
        return self._keys[model_name]

    def _simple(self, inputs, model_name: str):
        """The example's label and score when it is the simple case, else None. Plain dicts
        and arrays only (`type(...) is`, cheaper per call than isinstance against an ABC):
        other containers take TFMA's way."""
        label_key, prediction_key = self._model_keys(model_name)
        label, prediction = inputs.label, inputs.prediction
        if prediction_key or type(label) is dict and label_key in label:
            return None
        if model_name:
            if type(label) is dict:
                label = label.get(model_name)
            if type(prediction) is not dict:
                return None
            prediction = prediction.get(model_name)
        if type(label) is not np.ndarray or type(prediction) is not np.ndarray:
            return None
        if label.size != 1 or prediction.size != 1 or label.dtype.kind not in "biuf" or prediction.dtype.kind != "f":
            return None
        if label.item() not in (0, 1) or not math.isfinite(prediction.item()):
            return None
        return label.reshape(1), prediction.reshape(1)

    @staticmethod
    def plain(**kwargs) -> bool:
        """Whether a call with these arguments can be the simple case: nothing asked for
        that would make TFMA yield other than the example's label and score, weight 1."""
        return not (
            kwargs.get("output_name")
            or kwargs.get("sub_key") is not None
            or kwargs.get("aggregation_type")
            or kwargs.get("class_weights")
            or kwargs.get("example_weighted")
            or not kwargs.get("flatten", True)
            or kwargs.get("allow_none")
        )

    def label_and_score(self, inputs, model_name: str):
        """The example's label and score as floats when it is the simple case, else None;
        for a call that is `plain`. Read once per example and model however many slices
        and combiners ask: TFMA hands the same inputs object to every combiner of every
        slice the example falls in (the preprocessing is before FanoutSlices in
        metrics_plots_and_validations_evaluator.py at v0.47.0), so the last example read in
        this thread is remembered, held so that its identity cannot be reused."""
        last = _LAST_READ
        if last.inputs is not inputs:
            last.inputs, last.values = inputs, {}
        key = (model_name, self._model_keys(model_name))
        if key not in last.values:
            simple = self._simple(inputs, model_name)
            last.values[key] = None if simple is None else (float(simple[0][0]), float(simple[1][0]))
        return last.values[key]

    def __call__(self, inputs, **kwargs):
        model_name = kwargs.get("model_name", "")
        simple = self._simple(inputs, model_name) if self.plain(**kwargs) else None
        if simple is None:
            return metric_util.to_label_prediction_example_weight(inputs, **{"eval_config": self._eval_config, **kwargs})
        return ((simple[0], simple[1], _UNIT_WEIGHT),)


class _ArrayCombiner(beam.CombineFn):
    """What both array combiners take from the TFMA combiner they replace, and how they read
    an example: into the (label, prediction, weight) tuples TFMA's own would have read."""

    def __init__(self, tfma_combiner, fractional_labels: bool):
        self._key = tfma_combiner._key
        self._eval_config = tfma_combiner._eval_config
        self._aggregation_type = tfma_combiner._aggregation_type
        self._class_weights = tfma_combiner._class_weights
        self._example_weighted = tfma_combiner._example_weighted
        self._fractional_labels = fractional_labels
        self._label_prediction_weight = LabelPredictionWeight(self._eval_config)
        self._plain = LabelPredictionWeight.plain(
            output_name=self._key.output_name,
            sub_key=self._key.sub_key,
            aggregation_type=self._aggregation_type,
            class_weights=self._class_weights,
            example_weighted=self._example_weighted,
        )

    def _label_and_score(self, element: metric_types.StandardMetricInputs):
        """The example's label and score as floats, weight 1, when it is the simple case
        (LabelPredictionWeight); else None and `_tuples` reads it."""
        return self._label_prediction_weight.label_and_score(element, self._key.model_name) if self._plain else None

    def _tuples(self, element: metric_types.StandardMetricInputs):
        return self._label_prediction_weight(
            element,
            model_name=self._key.model_name,
            output_name=self._key.output_name,
            sub_key=self._key.sub_key,
            fractional_labels=self._fractional_labels,
            flatten=True,
            aggregation_type=self._aggregation_type,
            class_weights=self._class_weights,
            example_weighted=self._example_weighted,
        )


class ArrayHistogramCombiner(_ArrayCombiner):
    """TFMA's `_CalibrationHistogramCombiner` (v0.47.0) with a numpy accumulator: same
    parameters, same buckets, the same output."""

    def __init__(self, tfma_combiner: calibration_histogram._CalibrationHistogramCombiner):
        super().__init__(tfma_combiner, tfma_combiner._fractional_labels)
        self._num_buckets = tfma_combiner._num_buckets
        self._left = tfma_combiner._left
        self._range = tfma_combiner._range
        self._prediction_based_bucketing = tfma_combiner._prediction_based_bucketing

    def _bucket_ids(self, values: np.ndarray) -> np.ndarray:
        """TFMA's `_bucket_index`, for an array: 0 below `left`, num_buckets + 1 from `right` on."""
        index = (values - self._left) / self._range * self._num_buckets + 1
        return np.where(index < 0, 0, np.where(index >= self._num_buckets + 1, self._num_buckets + 1, index)).astype(
            np.int64
        )

    def _flush(self, histogram: _Histogram) -> _Histogram:
        """Adds the pending inputs to the arrays."""
        if not histogram.pending:
            return histogram
        bucketed, labels, predictions, weights = np.frombuffer(histogram.pending, dtype=np.float64).reshape(-1, 4).T
        ids = np.concatenate([histogram.ids, self._bucket_ids(bucketed)])
        new_rows = np.stack([np.ones_like(weights), labels * weights, predictions * weights, weights])
        rows = np.concatenate([histogram.sums, new_rows], axis=1)
        histogram.ids, histogram.sums = _added(ids, rows, self._num_buckets + 2)
        histogram.pending = array("d")
        return histogram

    def create_accumulator(self) -> _Histogram:
        return _Histogram()

    def add_input(self, histogram: _Histogram, element: metric_types.StandardMetricInputs) -> _Histogram:
        read = self._label_and_score(element)
        if read is not None:
            label, prediction = read
            histogram.pending.extend((prediction if self._prediction_based_bucketing else label, label, prediction, 1.0))
        else:
            for label, prediction, example_weight in self._tuples(element):
                label, prediction = float(label), float(prediction)
                bucketed = prediction if self._prediction_based_bucketing else label
                histogram.pending.extend((bucketed, label, prediction, float(example_weight)))
        if len(histogram.pending) >= 4 * _PENDING:
            self._flush(histogram)
        return histogram

    def compact(self, histogram: _Histogram) -> _Histogram:
        return self._flush(histogram)

    def merge_accumulators(self, histograms: Iterable[_Histogram]) -> _Histogram:
        merged = _Histogram()
        histograms = [self._flush(h) for h in histograms]
        ids = np.concatenate([h.ids for h in histograms])
        rows = np.concatenate([h.sums for h in histograms], axis=1)
        merged.ids, merged.sums = _added(ids, rows, self._num_buckets + 2)
        return merged

    def extract_output(self, histogram: _Histogram) -> Dict[metric_types.PlotKey, calibration_histogram.Histogram]:
        histogram = self._flush(histogram)
        buckets = [
            calibration_histogram.Bucket(int(bucket_id), float(labels), float(predictions), float(examples))
            for bucket_id, labels, predictions, examples in zip(
                histogram.ids, histogram.sums[_LABELS], histogram.sums[_PREDICTIONS], histogram.sums[_EXAMPLES]
            )
        ]
        return {self._key: buckets}


class _Counts:
    """The confusion counts' accumulator: per threshold the weighted TP, TN, FP and FN, plus
    inputs not yet counted."""

    __slots__ = ("counts", "pending")

    def __init__(self, num_thresholds: int):
        self.counts = np.zeros((4, num_thresholds))
        self.pending = array("d")  # per input: label, prediction, weight

    def __getstate__(self):
        return self.counts, self.pending

    def __setstate__(self, state):
        self.counts, self.pending = state


_TP, _TN, _FP, _FN = range(4)


class ArrayConfusionCombiner(_ArrayCombiner):
    """TFMA's `_BinaryConfusionMatrixCombiner` (v0.47.0) without example ids (the threshold
    metrics ask for none), counting in numpy arrays: the same rule per tuple (a positive is a
    label of 1 with fractional labels, above the threshold without; predicted positive is
    above the threshold), the same output (TFMA's `MatrixAccumulator`: per threshold a
    `_ThresholdEntry` with empty example lists). TFMA's accumulator is a dict of named tuples
    rebuilt for every example, its main cost after reading the example."""

    def __init__(self, tfma_combiner: binary_confusion_matrices._BinaryConfusionMatrixCombiner):
        super().__init__(tfma_combiner, tfma_combiner._enable_fractional_labels)
        self._thresholds = list(tfma_combiner._binary_confusion_matrices._thresholds)

    def _flush(self, counts: _Counts) -> _Counts:
        if not counts.pending:
            return counts
        labels, predictions, weights = np.frombuffer(counts.pending, dtype=np.float64).reshape(-1, 3).T
        thresholds = np.array(self._thresholds, dtype=np.float64)[:, None]
        positive = np.broadcast_to(labels == 1.0, (len(thresholds), len(labels))) if self._fractional_labels else labels > thresholds
        predicted = predictions > thresholds
        for row, cells in ((_TP, positive & predicted), (_FN, positive & ~predicted), (_FP, ~positive & predicted), (_TN, ~positive & ~predicted)):
            counts.counts[row] += cells @ weights
        counts.pending = array("d")
        return counts

    def create_accumulator(self) -> _Counts:
        return _Counts(len(self._thresholds))

    def add_input(self, counts: _Counts, element: metric_types.StandardMetricInputs) -> _Counts:
        read = self._label_and_score(element)
        if read is not None:
            counts.pending.extend((*read, 1.0))
        else:
            for label, prediction, example_weight in self._tuples(element):
                counts.pending.extend(
                    (metric_util.safe_to_scalar(label), metric_util.safe_to_scalar(prediction), metric_util.safe_to_scalar(example_weight))
                )
        if len(counts.pending) >= 3 * _PENDING:
            self._flush(counts)
        return counts

    def compact(self, counts: _Counts) -> _Counts:
        return self._flush(counts)

    def merge_accumulators(self, accumulators: Iterable[_Counts]) -> _Counts:
        merged = self.create_accumulator()
        for counts in accumulators:
            merged.counts += self._flush(counts).counts
        return merged

    def extract_output(self, counts: _Counts) -> Dict[metric_types.MetricKey, dict]:
        """Every threshold, zeros where nothing came, as TFMA's accumulator's extract_output."""
        counts = self._flush(counts)
        matrices = {
            threshold: bcm_aggregates._ThresholdEntry(
                bcm_aggregates.Matrix(tp=float(tp), tn=float(tn), fp=float(fp), fn=float(fn)), [], [], [], []
            )
            for threshold, tp, tn, fp, fn in zip(self._thresholds, *counts.counts[[_TP, _TN, _FP, _FN]])
        }
        return {self._key: matrices}


class ExampleCounter(beam.CombineFn):
    """TFMA's `_ExampleCountCombiner` (v0.47.0) unweighted: it adds `np.sum(np.array(1.0))` for
    each example, whatever the example holds; this adds 1.0. It runs once per slice an example
    is in, so the numpy call was about 12 µs an example under cProfile at 100,000 rows."""

    def __init__(self, tfma_combiner: example_count._ExampleCountCombiner):
        self._keys = tfma_combiner._keys

    def create_accumulator(self) -> float:
        return 0.0

    def add_input(self, accumulator: float, element: metric_types.StandardMetricInputs) -> float:
        return accumulator + 1.0

    def merge_accumulators(self, accumulators: Iterable[float]) -> float:
        return float(sum(accumulators))

    def extract_output(self, accumulator: float) -> Dict[metric_types.MetricKey, float]:
        return {key: accumulator for key in self._keys}


def with_array_accumulators(computations: metric_types.MetricComputations) -> metric_types.MetricComputations:
    """The computations with TFMA's histogram combiner swapped for ArrayHistogramCombiner, its
    confusion-matrix combiner for ArrayConfusionCombiner and its unweighted example counter
    for ExampleCounter: the same keys and preprocessors,
    so TFMA still computes each once however many metrics share it (it dedups computations by
    combiner class, keys and preprocessors) and its derived metrics read them. A
    confusion-matrix combiner that samples example ids keeps TFMA's, reading examples through
    LabelPredictionWeight (a parameter of TFMA's combiner that its metrics do not pass on, so
    it is set on the combiner they built). The derived computations that turn either into
    confusion matrices hand them on as ArrayArithmeticMatrices."""
    swapped = []
    for computation in computations:
        combiner = getattr(computation, "combiner", None)
        if isinstance(combiner, calibration_histogram._CalibrationHistogramCombiner):
            computation = metric_types.MetricComputation(computation.keys, computation.preprocessors, ArrayHistogramCombiner(combiner))
        elif isinstance(combiner, example_count._ExampleCountCombiner) and not combiner._example_weighted:
            computation = metric_types.MetricComputation(computation.keys, computation.preprocessors, ExampleCounter(combiner))
        elif isinstance(combiner, binary_confusion_matrices._BinaryConfusionMatrixCombiner):
            if combiner._example_id_key:
                combiner._extract_label_prediction_and_weight = LabelPredictionWeight(combiner._eval_config)
            else:
                computation = metric_types.MetricComputation(computation.keys, computation.preprocessors, ArrayConfusionCombiner(combiner))
        elif isinstance(computation, metric_types.DerivedMetricComputation) and any(
            key.name.startswith(binary_confusion_matrices.BINARY_CONFUSION_MATRICES_NAME) for key in computation.keys
        ):
            computation = metric_types.DerivedMetricComputation(computation.keys, _with_array_arithmetic(computation.result))
        swapped.append(computation)
    return swapped


class ArrayArithmeticMatrices(binary_confusion_matrices.Matrices):
    """TFMA's `Matrices` (confusion counts at thresholds), doing the arithmetic TFMA does on it
    in numpy rather than a Python loop over the thresholds.

    With intervals, TFMA's jackknife (evaluators/jackknife.py and confidence_intervals_util.py
    at v0.47.0, `_JackknifeSampleCombineFn.extract_output`, `mean_and_std`) computes a standard
    error for every structured value of every slice, the derived `_binary_confusion_matrices_*`
    ones included: about 160 sums, differences, products and powers over its 20 samples, each a
    Python loop over the thresholds (`Matrices._apply_binary_op_elementwise`), 1,000 for the
    AUC and 100 for the confusion-matrix plot. Those values are private: TFMA drops them right
    after (`_remove_private_metrics`), and its derived metrics read each sample's matrices, not
    their arithmetic. Under cProfile on 1,000 rows the loops took 95 of the jackknife's 111 s
    (bench/notes.md, "The jackknife's arithmetic"). Same thresholds: the same operators on
    float64 arrays, element by element; otherwise TFMA's own merge of the thresholds."""

    __slots__ = ()

    def _apply_binary_op_elementwise(self, other: binary_confusion_matrices.Matrices, op):
        if self.thresholds != other.thresholds:
            return type(self)(*super()._apply_binary_op_elementwise(other, op))
        return type(self)(
            self.thresholds,
            *(op(np.asarray(mine, dtype=np.float64), np.asarray(theirs, dtype=np.float64)).tolist() for mine, theirs in zip(self[1:], other[1:])),
        )

    def _apply_binary_op_broadcast(self, other: float, op):
        return type(self)(self.thresholds, *(op(np.asarray(counts, dtype=np.float64), other).tolist() for counts in self[1:]))


def _with_array_arithmetic(result):
    """A derived computation's result function whose `Matrices` come out as
    ArrayArithmeticMatrices, every other value as it was. A function, as TFMA's are: TFMA tells
    derived computations apart by their keys and their result's class name
    (metric_types.py at v0.47.0, `DerivedMetricComputation._computation_id`)."""

    def matrices_in_arrays(*args, **kwargs):
        return {
            key: ArrayArithmeticMatrices(*value) if type(value) is binary_confusion_matrices.Matrices else value
            for key, value in result(*args, **kwargs).items()
        }

    return matrices_in_arrays


class _WithArrayAccumulators:
    """Mixed in before a TFMA metric class: its computations, with_array_accumulators."""

    def computations(self, *args, **kwargs) -> metric_types.MetricComputations:
        return with_array_accumulators(super().computations(*args, **kwargs))


# TFMA's example count, AUC, plots and threshold metrics. Named apart from TFMA's: TFMA takes a class name it
# knows as its own class whatever module the config gives (metric_specs.py at v0.47.0,
# `metric_instance`).
class DirectExampleCount(_WithArrayAccumulators, tfma.metrics.ExampleCount):
    """tfma.metrics.ExampleCount, counting without numpy (ExampleCounter)."""


class ArrayHistogramAUC(_WithArrayAccumulators, tfma.metrics.AUC):
    """tfma.metrics.AUC, its histogram in arrays."""


class ArrayHistogramConfusionMatrixPlot(_WithArrayAccumulators, tfma.metrics.ConfusionMatrixPlot):
    """tfma.metrics.ConfusionMatrixPlot, its histogram in arrays."""


class ArrayHistogramCalibrationPlot(_WithArrayAccumulators, tfma.metrics.CalibrationPlot):
    """tfma.metrics.CalibrationPlot, its histogram in arrays."""


class DirectBinaryAccuracy(_WithArrayAccumulators, tfma.metrics.BinaryAccuracy):
    """tfma.metrics.BinaryAccuracy, its confusion counts in arrays."""


class DirectPrecision(_WithArrayAccumulators, tfma.metrics.Precision):
    """tfma.metrics.Precision, its confusion counts in arrays."""


class DirectRecall(_WithArrayAccumulators, tfma.metrics.Recall):
    """tfma.metrics.Recall, its confusion counts in arrays."""


class DirectFallOut(_WithArrayAccumulators, tfma.metrics.FallOut):
    """tfma.metrics.FallOut, its confusion counts in arrays."""


class DirectMissRate(_WithArrayAccumulators, tfma.metrics.MissRate):
    """tfma.metrics.MissRate, its confusion counts in arrays."""


class DirectTruePositives(_WithArrayAccumulators, tfma.metrics.TruePositives):
    """tfma.metrics.TruePositives, its confusion counts in arrays."""


class DirectTrueNegatives(_WithArrayAccumulators, tfma.metrics.TrueNegatives):
    """tfma.metrics.TrueNegatives, its confusion counts in arrays."""


class DirectFalsePositives(_WithArrayAccumulators, tfma.metrics.FalsePositives):
    """tfma.metrics.FalsePositives, its confusion counts in arrays."""


class DirectFalseNegatives(_WithArrayAccumulators, tfma.metrics.FalseNegatives):
    """tfma.metrics.FalseNegatives, its confusion counts in arrays."""
