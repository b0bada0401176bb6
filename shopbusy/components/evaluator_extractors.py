"""The Evaluator's extractors: TFMA's defaults behind a reshuffle, so that Beam's worker
processes share the metric computation.

TFMA computes its metrics in per-example Python combiners (bench/notes.md, "The Evaluator at
a million rows"), in the same fused Beam stage as the read of the eval split. That split is
one gzipped TFRecord file, which Beam cannot divide, so with `--direct_num_workers=2` one
worker did all the work and the second only cost its start-up (43 s against 32 s in memory
on 40,000 examples). A reshuffle of the decoded record batches ends that stage: everything
after it (prediction, slicing, the combiners' add_input) is split over the workers. TFX's
Evaluator takes the extractors from this module (`module_path`), the way its
`custom_extractors` hook is meant.

The reshuffle moves each extract's record batch as zstd-compressed Arrow IPC bytes, not as
the batch. Beam's DirectRunner holds a reshuffle's whole input in the runner process (the
`shopbusy run` process, beside its two workers) until the next stage reads it; pickled
record batches, which carry the decoded columns and every serialized example, grew that
process by 420 MB at a million rows (400,178 eval examples) for most of the Evaluator.
Compressed, the same batches are about a tenth of that size and come back identical
(bench/notes.md, "The reshuffle's payload"; the run's peak, at the Evaluator's end, is
TFMA's accumulators).

The slice keys of an example are TFMA's (`SliceKeysFn`), found once per distinct combination
of the sliced columns' values rather than once per example.
"""

import copy
import math
from typing import List, Optional

import apache_beam as beam
import numpy as np
import pyarrow as pa
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.extractors import slice_key_extractor
from tfx_bsl.tfxio import tensor_adapter

# Arrow's IPC codec: zstd made a 100,000-row batch of the eval split (48 MB as Arrow) 4-5 MB
# in 0.04-0.09 s; lz4 13.5-14 MB in about the same time.
COMPRESSION = "zstd"


def pack(batch: pa.RecordBatch) -> bytes:
    """The record batch as compressed Arrow IPC stream bytes (schema included)."""
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=COMPRESSION)
    with pa.ipc.new_stream(sink, batch.schema, options=options) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def unpack(packed: bytes) -> pa.RecordBatch:
    """The record batch `pack` was given, column for column."""
    return pa.ipc.open_stream(packed).read_next_batch()


def _with_batch(extracts: dict, convert) -> dict:
    """The extracts with their record batch (TFMA's ARROW_RECORD_BATCH_KEY) converted."""
    batch = tfma.constants.ARROW_RECORD_BATCH_KEY
    return {key: convert(value) if key == batch else value for key, value in extracts.items()}


@beam.ptransform_fn
def CompressedReshuffle(extracts: beam.PCollection) -> beam.PCollection:
    """beam.Reshuffle of TFMA's first extracts (each holding one record batch of the eval
    split, tfma.BatchedInputsToExtracts), whose batches cross the runner compressed."""
    return (
        extracts
        | "Pack" >> beam.Map(_with_batch, pack)
        | "Reshuffle" >> beam.Reshuffle()
        | "Unpack" >> beam.Map(_with_batch, unpack)
    )


# Distinct value combinations remembered per DoFn instance; beyond this many (a slice on a
# column of unique values) an example's slice keys are found for it alone, as TFMA does.
MAX_REMEMBERED_SLICE_KEYS = 100_000


def _cross_slicing_specs(eval_config: tfma.EvalConfig) -> list:
    """Each cross slice's baseline and comparison specs, in TFMA's order."""
    return [spec for cross in eval_config.cross_slicing_specs for spec in (cross.baseline_spec, *cross.slicing_specs)]


def sliced_columns(eval_config: Optional[tfma.EvalConfig]) -> Optional[tuple]:
    """The raw feature columns the eval config's slicing specs read (cross slices' too), or
    None when what decides an example's slices is not only those columns' values: an SQL
    slice, or a model whose Transform output is sliced on."""
    if eval_config is None:
        return None
    specs = [*eval_config.slicing_specs, *_cross_slicing_specs(eval_config)]
    if any(spec.slice_keys_sql for spec in specs) or any(m.preprocessing_function_names for m in eval_config.model_specs):
        return None
    return tuple(sorted({key for spec in specs for key in (*spec.feature_keys, *spec.feature_values)}))


class SliceKeysFn(slice_key_extractor.ExtractSliceKeysFn):
    """TFMA's `ExtractSliceKeysFn` (extractors/slice_key_extractor.py at v0.47.0), asked once per
    distinct combination of the sliced columns' values.

    TFMA finds an example's slice keys by walking every slicing spec over its features (a
    numpy `unique` per sliced column and spec): 7.6 s of a 69 s Evaluator under cProfile at
    100,000 rows. Which slices an example is in depends only on those columns' values, and
    an eval split holds few distinct combinations of them, so the keys TFMA found for the
    first example with a combination are handed to every later one. Examples whose sliced
    columns are not one plain value each (missing, several values, a NaN) go to TFMA's
    function, as does everything when `sliced_columns` is None."""

    def __init__(self, eval_config: Optional[tfma.EvalConfig]):
        super().__init__(eval_config, materialize=False)
        self._columns = sliced_columns(eval_config)
        self._known = {}  # the columns' values -> TFMA's slice keys for them

    def _values(self, element) -> Optional[tuple]:
        """The sliced columns' values with their dtypes (so that 1 and 1.0 stay apart), when
        each is one hashable value that equals itself."""
        features = element.get(tfma.constants.FEATURES_KEY)
        if self._columns is None or type(features) is not dict or element.get(tfma.constants.SLICE_KEY_TYPES_KEY) is not None:
            return None
        values = []
        for column in self._columns:
            value = features.get(column)
            if type(value) is not np.ndarray or value.size != 1 or value.dtype.kind not in "biufSO":
                return None
            dtype, value = value.dtype.char, value.item()
            if type(value) is float and not math.isfinite(value) or type(value) not in (bytes, str, int, float, bool):
                return None
            values += (dtype, value)
        return tuple(values)

    def process(self, element, slice_spec):
        values = self._values(element)
        if values is None:
            return super().process(element, slice_spec)
        keys = self._known.get(values)
        if keys is None:
            [found] = super().process(element, slice_spec)
            if len(self._known) < MAX_REMEMBERED_SLICE_KEYS:
                self._known[values] = found[tfma.constants.SLICE_KEY_TYPES_KEY]
            return [found]
        element = copy.copy(element)  # as TFMA's: a shallow copy, the input is not mutated
        element[tfma.constants.SLICE_KEY_TYPES_KEY] = keys
        return [element]


def _slice_key_extractor(eval_config: tfma.EvalConfig) -> tfma.extractors.Extractor:
    """TFMA's SliceKeyExtractor as tfma.default_extractors builds it (the same stage name and
    slicing specs, extractors/slice_key_extractor.py at v0.47.0; nothing materialized), with
    SliceKeysFn."""
    slice_spec = [tfma.slicer.SingleSliceSpec(spec=spec) for spec in eval_config.slicing_specs]
    for spec in _cross_slicing_specs(eval_config):
        single = tfma.slicer.SingleSliceSpec(spec=spec)
        if single not in slice_spec:
            slice_spec.append(single)
    if not slice_spec:
        slice_spec = [tfma.slicer.SingleSliceSpec()]
    return tfma.extractors.Extractor(
        stage_name=slice_key_extractor.SLICE_KEY_EXTRACTOR_STAGE_NAME,
        ptransform=beam.ParDo(SliceKeysFn(eval_config), slice_spec=slice_spec),
    )


def custom_extractors(
    eval_shared_model: tfma.types.MaybeMultipleEvalSharedModels,
    eval_config: tfma.EvalConfig,
    tensor_adapter_config: Optional[tensor_adapter.TensorAdapterConfig],
) -> List[tfma.extractors.Extractor]:
    """TFMA's default extractors (what the Evaluator uses without this hook) after a reshuffle,
    their slice-key extractor finding each distinct combination's keys once (SliceKeysFn)."""
    reshuffle = tfma.extractors.Extractor(stage_name="ReshuffleRecordBatches", ptransform=CompressedReshuffle())
    defaults = tfma.default_extractors(
        eval_shared_model=eval_shared_model, eval_config=eval_config, tensor_adapter_config=tensor_adapter_config
    )
    return [reshuffle] + [
        _slice_key_extractor(eval_config) if extractor.stage_name == slice_key_extractor.SLICE_KEY_EXTRACTOR_STAGE_NAME else extractor
        for extractor in defaults
    ]
