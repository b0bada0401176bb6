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
"""

from typing import List, Optional

import apache_beam as beam
import pyarrow as pa
import tensorflow_model_analysis as tfma
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


def custom_extractors(
    eval_shared_model: tfma.types.MaybeMultipleEvalSharedModels,
    eval_config: tfma.EvalConfig,
    tensor_adapter_config: Optional[tensor_adapter.TensorAdapterConfig],
) -> List[tfma.extractors.Extractor]:
    """TFMA's default extractors (what the Evaluator uses without this hook), after a reshuffle."""
    reshuffle = tfma.extractors.Extractor(stage_name="ReshuffleRecordBatches", ptransform=CompressedReshuffle())
    return [reshuffle] + tfma.default_extractors(
        eval_shared_model=eval_shared_model, eval_config=eval_config, tensor_adapter_config=tensor_adapter_config
    )
