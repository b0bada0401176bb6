"""Transform with last week's analyzer cache on a cluster, where no resolver can find it.

Locally a weekly run over K spans hands Transform the K spans' own Examples artifacts and the
analyzer cache the last accepted week's Transform wrote (pipeline/resolvers.py), and
TensorFlow Transform analyses only the span it has not seen. On a cluster two things stand in
the way, and this executor (TFX's Transform executor otherwise) removes both:

- Transform gets one merged Examples artifact (components/accepted_spans.py: a KFP output is
  one artifact), in a new folder every run. TFX keys each analysed dataset by its file pattern
  (`_Dataset.__init__` in tfx/components/transform/executor.py, TFX 1.16), so a merged folder
  never matches last week's cache. The merged artifact names the folders its spans were
  copied from (`SPAN_EXAMPLES_PROPERTY`), and Transform analyses those: the same keys every
  week, as locally. It still materializes the merged copy, the one output the Trainer reads.
- Nothing resolves last week's cache. So each run writes down the cache its Transform wrote,
  beside the record of accepted spans (`analyzer-cache-span-<N>.json`), and the next span's
  run reads the newest one before it. A span's Transform runs only after its gate passed, so
  only accepted spans leave a cache.

A cache never makes a result stale: TensorFlow Transform keys each entry by the analyzer's
graph as well as the dataset, so a changed `preprocessing_fn` or schema misses and is
analysed afresh (tensorflow_transform/beam/analysis_graph_builder.py), as locally.
"""

import contextlib
import json
import os
import re
from typing import List, Optional

from tfx.components.transform import executor as transform_executor
from tfx.components.transform import executor_utils as transform_executor_utils
from tfx.components.transform import labels
from tfx.components.transform.component import Transform
from tfx.components.util import value_utils
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.types import standard_artifacts, standard_component_specs
from tfx.utils import io_utils, json_utils

from shopbusy.components.accepted_spans import SPAN_EXAMPLES_PROPERTY, write_whole

# In Transform's custom_config on a cluster: where the records of accepted spans are kept.
ACCEPTED_DIR_CONFIG = "accepted_dir"
# On the updated cache: the spans whose analysis came from the cache read (a JSON list).
CACHED_SPANS_PROPERTY = "cached_spans"
CACHE_READ_PROPERTY = "analyzer_cache_read"  # the URI of the cache read ("" if none)
_RECORD = re.compile(r"^analyzer-cache-span-(\d+)\.json$")


def record_cache(accepted_dir: str, span: int, cache_uri: str) -> None:
    """Writes down the cache the run of `span` wrote (temporary name, then rename, as the
    accepted-span record is)."""
    write_whole(os.path.join(accepted_dir, f"analyzer-cache-span-{span}.json"), json.dumps({"span": span, "cache": cache_uri}))


def cache_before(accepted_dir: str, span: int) -> Optional[str]:
    """The cache written by the newest accepted span's run before `span`, if it still exists."""
    if not fileio.isdir(accepted_dir):
        return None
    spans = [int(m.group(1)) for m in (_RECORD.match(n.rstrip("/")) for n in fileio.listdir(accepted_dir)) if m]
    older = sorted(s for s in spans if s < span)
    if not older:
        return None
    with fileio.open(os.path.join(accepted_dir, f"analyzer-cache-span-{older[-1]}.json")) as f:
        uri = json.loads(f.read())["cache"]
    return uri if fileio.isdir(uri) else None


def _processor_analysing(analyzed_patterns: List[str]):
    """TFX's TransformProcessor with the analysed paths swapped for the spans' own folders (the
    same files the merged artifact holds copies of); what it materializes is unchanged."""

    class SpanwiseProcessor(transform_executor.TransformProcessor):
        def Transform(self, inputs, outputs, status_file=None):
            [file_format, *_] = value_utils.GetValues(inputs, labels.ANALYZE_PATHS_FILE_FORMATS_LABEL)
            inputs = dict(
                inputs,
                **{
                    labels.ANALYZE_DATA_PATHS_LABEL: analyzed_patterns,
                    labels.ANALYZE_PATHS_FILE_FORMATS_LABEL: [file_format] * len(analyzed_patterns),
                },
            )
            return super().Transform(inputs, outputs, status_file)

    return SpanwiseProcessor


@contextlib.contextmanager
def _processing_with(processor_class):
    """TFX 1.16's Executor.Do builds the paths it analyses from its input artifacts and hands
    them to `TransformProcessor()`, named in its module, which also reaches the class's static
    helpers by that name (tfx/components/transform/executor.py, tag v1.16.0); there is no hook
    between. A merged artifact must be materialized as one output for the Trainer while its
    spans are analysed from their own folders, so the name points at a subclass for the call."""
    original = transform_executor.TransformProcessor
    transform_executor.TransformProcessor = processor_class
    try:
        yield
    finally:
        transform_executor.TransformProcessor = original


class SpanwiseTransformExecutor(transform_executor.Executor):
    """TFX's Transform, analysing each span from the folder its ExampleGen wrote, with the
    newest earlier accepted span's analyzer cache; records the cache it writes for the next
    span. It materializes the merged artifact as given: the Trainer reads one output."""

    def Do(self, input_dict, output_dict, exec_properties):
        custom_config = json_utils.loads(exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or "null") or {}
        accepted_dir = custom_config.get(ACCEPTED_DIR_CONFIG)
        [examples] = input_dict[standard_component_specs.EXAMPLES_KEY]
        span = int(examples.span or 0)
        sources = json.loads(examples.get_string_custom_property(SPAN_EXAMPLES_PROPERTY) or "[]")
        splits = transform_executor_utils.ResolveSplitsConfig(
            exec_properties.get(standard_component_specs.SPLITS_CONFIG_KEY), [examples]
        ).analyze
        patterns = {source_span: _patterns(uri, splits) for source_span, uri in sources}
        updated = output_dict.get(standard_component_specs.UPDATED_ANALYZER_CACHE_KEY)
        cache_uri = cache_before(accepted_dir, span) if accepted_dir and updated else None
        if cache_uri:
            cache = standard_artifacts.TransformCache()
            cache.uri = cache_uri
            input_dict = dict(input_dict, **{standard_component_specs.ANALYZER_CACHE_KEY: [cache]})
        analysed = [pattern for span_patterns in patterns.values() for pattern in span_patterns]
        with _processing_with(_processor_analysing(analysed)) if analysed else contextlib.nullcontext():
            super().Do(input_dict, output_dict, exec_properties)
        if accepted_dir and updated:
            [updated_cache] = updated
            cached = [s for s, span_patterns in patterns.items() if _cached(span_patterns, cache_uri)]
            updated_cache.set_string_custom_property(CACHE_READ_PROPERTY, cache_uri or "")
            updated_cache.set_string_custom_property(CACHED_SPANS_PROPERTY, json.dumps(cached))
            record_cache(accepted_dir, span, updated_cache.uri)


def _patterns(folder: str, splits) -> List[str]:
    """The file patterns TFX analyses for the Examples at `folder`."""
    return [io_utils.all_files_pattern(os.path.join(folder, f"Split-{split}")) for split in splits]


def _cached(patterns: List[str], cache_uri: Optional[str]) -> bool:
    """Whether the cache read had an entry for every one of `patterns`, under TFX's own
    dataset key (derived from the file pattern)."""
    keys = [transform_executor._Dataset(pattern, None, None, None).dataset_key.key for pattern in patterns]
    return bool(cache_uri) and all(fileio.isdir(os.path.join(cache_uri, key)) for key in keys)


class SpanwiseTransform(Transform):
    """TFX's Transform component with SpanwiseTransformExecutor (cluster targets)."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(SpanwiseTransformExecutor)
