"""Which earlier data spans a run may use: TFX resolver functions over ML Metadata.

Weekly runs ingest one span each (ExampleGen's {SPAN}). The Trainer sees the last K spans
and the drift check compares the newest span with the one before, both through TFX's own
span resolution (`ops.LatestSpan`, the op behind `rolling_range`). What TFX does not know
is which spans were *accepted*: a span the AnomalyGate rejected is still an Examples
artifact in ML Metadata, and a rolling range would train on it the next week. Hence the
one op of our own, `PassedAnomalyGate`, which keeps only artifacts some AnomalyGate
execution consumed and completed on.

These channels read every earlier run of the pipeline (`tfx.dsl.Channel` with a producer
id compiles to the pipeline and node contexts, without the run's own), so they are
resolved by the local runner's ML Metadata. KubeflowV2DagRunner compiles only Resolver
nodes with a strategy class, not resolver functions; the Kubeflow spec therefore keeps
one span and no drift baseline (kubeflow/runner.py).
"""

from typing import Sequence

from ml_metadata.proto import metadata_store_pb2
from tfx import types
from tfx.dsl.compiler import compiler_utils
from tfx.dsl.compiler import constants
from tfx.dsl.input_resolution import resolver_function, resolver_op
from tfx.dsl.input_resolution.ops import ops

from shopbusy.pipeline import config, nodes
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


@resolver_function.resolver_function
def training_spans(examples, *, num_spans: int):
    """The latest version of each of the newest `num_spans` accepted spans."""
    return ops.LatestSpan(PassedAnomalyGate(examples, pipeline_name=config.PIPELINE_NAME), n=num_spans)


@resolver_function.resolver_function
def previous_span(statistics):
    """The statistics of the newest accepted span before the one being checked (none on the
    first span, or when there are no span folders: then every run is span 0)."""
    return PassedAnomalyGate(statistics, pipeline_name=config.PIPELINE_NAME, previous_span=True)


def all_runs(producer_id: str, output_key: str, artifact_type) -> tfx.dsl.Channel:
    """Every run's output `output_key` of node `producer_id`, not only this run's."""
    return tfx.dsl.Channel(type=artifact_type, producer_component_id=producer_id, output_key=output_key)
