"""Which earlier data spans a run may use: TFX resolver functions over ML Metadata.

Weekly runs ingest one span each (ExampleGen's {SPAN}). The Trainer sees the last K spans
and the drift check compares the newest span with the one before, both through TFX's own
span resolution (`ops.LatestSpan`, the op behind `rolling_range`). What TFX does not know
is which spans were *accepted*: a span the AnomalyGate rejected is still an Examples
artifact in ML Metadata, and a rolling range would train on it the next week. Hence the
one op of our own, `PassedAnomalyGate`, which keeps only artifacts some AnomalyGate
execution consumed and completed on.

Transform's analyzer cache comes the same way (`earlier_analyzer_cache`): the cache a
Transform wrote before the newest span arrived, so that only the new span is analysed.

These channels read every earlier run of the pipeline (`tfx.dsl.Channel` with a producer
id compiles to the pipeline and node contexts, without the run's own), so they are
resolved by the local runner's ML Metadata. KubeflowV2DagRunner compiles only Resolver
nodes with a strategy class, not resolver functions; a cluster run reads the same two
answers from the record of accepted spans that passing gates keep under the pipeline root
(components/accepted_spans.py).
"""

from typing import Sequence

from ml_metadata.proto import metadata_store_pb2
from tfx import types
from tfx.dsl.compiler import compiler_utils
from tfx.dsl.compiler import constants
from tfx.dsl.input_resolution import resolver_function, resolver_op
from tfx.dsl.input_resolution.ops import ops

from shopbusy.pipeline import config, ingested, nodes
from shopbusy.pipeline.tfx_api import tfx

_PASSED = (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED)


class PassedAnomalyGate(
    resolver_op.ResolverOp,
    # The op is looked up by this name when the run resolves inputs (an unregistered name
    # is imported as a class path: tfx/orchestration/portable/input_resolution).
    canonical_name="shopbusy.pipeline.resolvers.PassedAnomalyGate",
    arg_data_types=(resolver_op.DataType.ARTIFACT_LIST,),
    return_data_type=resolver_op.DataType.ARTIFACT_LIST,
):
    """The artifacts an AnomalyGate execution of this pipeline consumed and passed.

    With `previous_span`, only the newest of those whose span is older than the newest span
    among the inputs: the baseline for the span being checked now, which has not passed
    yet. (ops.LatestSpan cannot pick it: it requires a `version` property, which
    ExampleStatistics does not have.)"""

    pipeline_name = resolver_op.Property(type=str)
    gate_node_id = resolver_op.Property(type=str, default=nodes.ANOMALY_GATE)
    previous_span = resolver_op.Property(type=bool, default=False)

    def apply(self, artifacts: Sequence[types.Artifact]) -> Sequence[types.Artifact]:
        if not artifacts:
            return []
        store = self.context.store
        gate = store.get_context_by_type_and_name(
            constants.NODE_CONTEXT_TYPE_NAME, compiler_utils.node_context_name(self.pipeline_name, self.gate_node_id)
        )
        if gate is None:
            return []
        passed = [e.id for e in store.get_executions_by_context(gate.id) if e.last_known_state in _PASSED]
        consumed = {
            event.artifact_id
            for event in store.get_events_by_execution_ids(passed)
            if event.type == metadata_store_pb2.Event.INPUT
        }
        kept = [a for a in artifacts if a.id in consumed]
        if self.previous_span:
            newest = max(a.span for a in artifacts)
            older = [a for a in kept if a.span < newest]
            kept = [max(older, key=lambda a: (a.span, a.mlmd_artifact.create_time_since_epoch, a.id))] if older else []
        return kept


class CacheBeforeNewestSpan(
    resolver_op.ResolverOp,
    canonical_name="shopbusy.pipeline.resolvers.CacheBeforeNewestSpan",
    arg_data_types=(resolver_op.DataType.ARTIFACT_LIST,),
    return_data_type=resolver_op.DataType.ARTIFACT_LIST,
):
    """The newest TransformCache written by a Transform whose examples were all older than
    the newest span ExampleGen has ingested: last week's cache, for this week's Transform.

    Not TFX's LatestArtifactStrategy, as the penguin example wires it: with the newest cache
    as an input, a re-run over the same week would feed its Transform the cache the first
    run wrote, not the one it read, and so never be a component-cache hit. Only accepted
    spans reach a Transform (it runs after the AnomalyGate), so a cache never holds the
    analysis of a rejected span. Which of its entries still apply (the same span's data,
    the same analyzers of the same preprocessing_fn over the same schema's types) is
    TFT's own check: its cache keys are the datasets' file patterns and the analyzers'
    graph fingerprints."""

    pipeline_name = resolver_op.Property(type=str)
    example_gen_node_id = resolver_op.Property(type=str, default=nodes.EXAMPLE_GEN)

    def apply(self, caches: Sequence[types.Artifact]) -> Sequence[types.Artifact]:
        if not caches:
            return []
        store = self.context.store
        examples = ingested.examples(store, self.pipeline_name, self.example_gen_node_id)
        if not examples:
            return []
        newest = max(ingested.span(a) for a in examples)
        examples_type = examples[0].type_id
        for cache in sorted(caches, key=lambda a: (a.mlmd_artifact.create_time_since_epoch, a.id), reverse=True):
            producers = [e.execution_id for e in store.get_events_by_artifact_ids([cache.id]) if e.type == metadata_store_pb2.Event.OUTPUT]
            read = [e.artifact_id for e in store.get_events_by_execution_ids(producers) if e.type == metadata_store_pb2.Event.INPUT]
            spans = [ingested.span(a) for a in store.get_artifacts_by_id(read) if a.type_id == examples_type]
            if spans and max(spans) < newest:
                return [cache]
        return []


@resolver_function.resolver_function
def training_spans(examples, *, num_spans: int):
    """The latest version of each of the newest `num_spans` accepted spans."""
    return ops.LatestSpan(PassedAnomalyGate(examples, pipeline_name=config.PIPELINE_NAME), n=num_spans)


@resolver_function.resolver_function
def previous_span(statistics):
    """The statistics of the newest accepted span before the one being checked (none on the
    first span, or when there are no span folders: then every run is span 0)."""
    return PassedAnomalyGate(statistics, pipeline_name=config.PIPELINE_NAME, previous_span=True)


@resolver_function.resolver_function
def earlier_analyzer_cache(caches):
    """Transform's analyzer cache from the week before (none on a first span, or without
    span folders: then every run is span 0 and there is no earlier week)."""
    return CacheBeforeNewestSpan(caches, pipeline_name=config.PIPELINE_NAME)


def all_runs(producer_id: str, output_key: str, artifact_type) -> tfx.dsl.Channel:
    """Every run's output `output_key` of node `producer_id`, not only this run's."""
    return tfx.dsl.Channel(type=artifact_type, producer_component_id=producer_id, output_key=output_key)
