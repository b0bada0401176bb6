"""What ExampleGen has ingested, read from ML Metadata without importing TFX.

Two readers ask: Transform's analyzer-cache resolver (resolvers.CacheBeforeNewestSpan), for
the newest span, inside a run; and `shopbusy run`, for late spans before it starts one
(results/runs.py, ingested_spans), where importing TFX would cost 10-18 s. One reading
for both, so that they count the same artifacts: ExampleGen's live Examples.
"""

from typing import List, Optional

from ml_metadata.proto import metadata_store_pb2

from shopbusy.pipeline import nodes

# TFX 1.16's context of a pipeline node, to which its executions and artifacts are
# attributed (dsl/compiler/constants.py, NODE_CONTEXT_TYPE_NAME; compiler_utils.py,
# node_context_name: "<pipeline>.<node id>"), and ExampleGen's artifact type
# (types/standard_artifacts.py, Examples.TYPE_NAME).
NODE_CONTEXT_TYPE = "node"
EXAMPLES_TYPE = "Examples"


def node_context_name(pipeline_name: str, node_id: str) -> str:
    return f"{pipeline_name}.{node_id}"


def examples_type_id(store) -> Optional[int]:
    """The Examples type's id; None before any ExampleGen wrote one (MLMD's
    get_artifact_type would raise NotFoundError)."""
    return {artifact_type.name: artifact_type.id for artifact_type in store.get_artifact_types()}.get(EXAMPLES_TYPE)


def examples(store, pipeline_name: str, example_gen_id: str = nodes.EXAMPLE_GEN) -> List[metadata_store_pb2.Artifact]:
    """Every Examples artifact ExampleGen published in this pipeline (LIVE: a failed
    execution's outputs never were)."""
    context = store.get_context_by_type_and_name(NODE_CONTEXT_TYPE, node_context_name(pipeline_name, example_gen_id))
    type_id = examples_type_id(store)
    if context is None or type_id is None:
        return []
    return [
        artifact
        for artifact in store.get_artifacts_by_context(context.id)
        if artifact.type_id == type_id and artifact.state == metadata_store_pb2.Artifact.LIVE
    ]


def span(artifact: metadata_store_pb2.Artifact) -> int:
    """An artifact's span: the typed property, else the custom property TFX's ExampleGen
    driver writes (components/columnar_csv_example_gen.py), else 0 (no span folders)."""
    if "span" in artifact.properties:
        return artifact.properties["span"].int_value
    if "span" not in artifact.custom_properties:
        return 0
    value = artifact.custom_properties["span"]  # an int from TFX, a number from Kubeflow's launcher
    return int(getattr(value, value.WhichOneof("value")) or 0)
