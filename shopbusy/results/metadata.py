"""Reads what a pipeline run did from ML Metadata: executions, their times and outputs.

Two layouts are read. TFX's local runner records a `pipeline_run` context per run and a
`node` context per component, with typed artifact properties and the execution properties
as custom properties. Kubeflow Pipelines' launcher (and `kubeflow run-local`, which records
as it does: kubeflow/pipelines backend/src/v2/metadata/client.go) records a
`system.PipelineRun` context, the task's name and its parameters (`inputs`) as custom
properties of the execution, and every artifact property as a custom property.
"""

import dataclasses
import hashlib
import os
from typing import Dict, List, Optional

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from shopbusy.pipeline import ingested

RUN_CONTEXT_TYPE = "pipeline_run"
KFP_RUN_CONTEXT_TYPE = "system.PipelineRun"
RUN_CONTEXT_TYPES = (RUN_CONTEXT_TYPE, KFP_RUN_CONTEXT_TYPE)
NODE_CONTEXT_TYPE = ingested.NODE_CONTEXT_TYPE
KFP_TASK_NAME, KFP_INPUTS = "task_name", "inputs"  # execution custom properties (client.go)
_STATES = metadata_store_pb2.Execution.State
OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
INPUT_EVENTS = (metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.DECLARED_INPUT)


@dataclasses.dataclass
class ComponentExecution:
    """One component's execution within a run."""

    node: str
    state: str  # COMPLETE, CACHED, FAILED, RUNNING, ...
    seconds: float
    outputs: Dict[str, List[metadata_store_pb2.Artifact]]
    execution: metadata_store_pb2.Execution
    inputs: Dict[str, List[metadata_store_pb2.Artifact]] = dataclasses.field(default_factory=dict)


def open_store(metadata_path: str, readonly: bool = True) -> metadata_store.MetadataStore:
    config_proto = metadata_store_pb2.ConnectionConfig()
    config_proto.sqlite.filename_uri = metadata_path
    config_proto.sqlite.connection_mode = (
        metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
        if readonly
        else metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE
    )
    return metadata_store.MetadataStore(config_proto)


def run_ids(store: metadata_store.MetadataStore) -> List[str]:
    """Every run's id, newest first."""
    runs = [c for context_type in RUN_CONTEXT_TYPES for c in store.get_contexts_by_type(context_type)]
    # Ids break ties: two contexts can be created within the same millisecond.
    return [c.name for c in sorted(runs, key=lambda c: (c.create_time_since_epoch, c.id), reverse=True)]


def latest_run_id(store: metadata_store.MetadataStore) -> Optional[str]:
    ids = run_ids(store)
    return ids[0] if ids else None


def run_context(store: metadata_store.MetadataStore, run_id: str) -> metadata_store_pb2.Context:
    for context_type in RUN_CONTEXT_TYPES:
        context = store.get_context_by_type_and_name(context_type, run_id)
        if context is not None:
            return context
    return None


def run_executions(store: metadata_store.MetadataStore, run_id: str) -> List[ComponentExecution]:
    """The run's component executions in the order they started."""
    executions = sorted(store.get_executions_by_context(run_context(store, run_id).id), key=lambda e: e.create_time_since_epoch)
    result = []
    for execution in executions:
        node = custom_property(execution, KFP_TASK_NAME) or next(
            (c.name for c in store.get_contexts_by_execution(execution.id) if _context_type(store, c) == NODE_CONTEXT_TYPE),
            str(execution.type_id),
        )
        result.append(
            ComponentExecution(
                node=node.split(".", 1)[-1],  # node contexts are named '<pipeline>.<node id>'
                state=_STATES.Name(execution.last_known_state),
                seconds=(execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000,
                outputs=_artifacts(store, execution.id, OUTPUT_EVENTS),
                execution=execution,
                inputs=_artifacts(store, execution.id, INPUT_EVENTS),
            )
        )
    return result


def _context_type(store, context) -> str:
    return store.get_context_types_by_id([context.type_id])[0].name


def _artifacts(store, execution_id: int, event_types) -> Dict[str, List[metadata_store_pb2.Artifact]]:
    """The execution's input or output artifacts by key ('examples', 'model', ...)."""
    events = [e for e in store.get_events_by_execution_ids([execution_id]) if e.type in event_types]
    artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    by_key: Dict[str, List[metadata_store_pb2.Artifact]] = {}
    for event in events:
        # One event names every key the artifact was given under: TFX (execution_lib,
        # event_lib.add_event_path) and run-local add a (key, index) pair per key.
        keys = [step.key for step in event.path.steps if step.HasField("key")] or [""]
        for key in keys:
            by_key.setdefault(key, []).append(artifacts[event.artifact_id])
    return by_key


def statistics_file(statistics_uri: str, split: str) -> str:
    """StatisticsGen's file for one split of an ExampleStatistics artifact (TFX 1.16 layout:
    tfx/types/artifact_utils.py get_split_uri, components/statistics_gen/executor.py)."""
    return os.path.join(statistics_uri, f"Split-{split}", "FeatureStats.pb")


def fingerprint_digest(fingerprint: str) -> str:
    """A short, stable digest of ExampleGen's input fingerprint, to tell data versions apart."""
    return hashlib.sha256(fingerprint.encode()).hexdigest()[:10]


span = ingested.span  # one reading of an artifact's span for the pipeline's resolvers and its readers


def custom_property(node, name: str):
    """An artifact's or execution's custom property, whichever type it was stored as (None when absent)."""
    if name not in node.custom_properties:
        return None
    value = node.custom_properties[name]
    return getattr(value, value.WhichOneof("value"))


def string_property(artifact: metadata_store_pb2.Artifact, name: str) -> str:
    """A string property of an artifact: typed (TFX), else custom (Kubeflow)."""
    if name in artifact.properties:
        return artifact.properties[name].string_value
    return custom_property(artifact, name) or ""


def execution_property(execution: metadata_store_pb2.Execution, name: str):
    """An execution property: a custom property (TFX), else a field of Kubeflow's `inputs`."""
    value = custom_property(execution, name)
    if value is None and KFP_INPUTS in execution.custom_properties:
        field = execution.custom_properties[KFP_INPUTS].struct_value.fields.get(name)
        value = getattr(field, field.WhichOneof("kind")) if field is not None else None
    return value
