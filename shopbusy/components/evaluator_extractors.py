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
"""

from typing import List, Optional

import apache_beam as beam
import tensorflow_model_analysis as tfma
from tfx_bsl.tfxio import tensor_adapter


def custom_extractors(
    eval_shared_model: tfma.types.MaybeMultipleEvalSharedModels,
    eval_config: tfma.EvalConfig,
    tensor_adapter_config: Optional[tensor_adapter.TensorAdapterConfig],
) -> List[tfma.extractors.Extractor]:
    """TFMA's default extractors (what the Evaluator uses without this hook), after a reshuffle."""
    reshuffle = tfma.extractors.Extractor(stage_name="ReshuffleRecordBatches", ptransform=beam.Reshuffle())
    return [reshuffle] + tfma.default_extractors(
        eval_shared_model=eval_shared_model, eval_config=eval_config, tensor_adapter_config=tensor_adapter_config
    )
