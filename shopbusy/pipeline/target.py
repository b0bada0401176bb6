"""Where the one DAG runs, and everything that differs because of it: the orchestration target.

`create_pipeline` branches on it, the options a run may take are checked against it, and the
Kubeflow compiler keys its changes to the compiled spec by it (kubeflow/runner.py). This is
the one place to read how a Kubeflow run differs from a local one.
"""

import dataclasses
from typing import Tuple


class TargetError(ValueError):
    """A run option the target cannot run, with the reason (a usage error: exit 2)."""


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    what: str
    # TFX resolver functions find earlier runs' spans in ML Metadata (training on the newest K
    # accepted spans, the drift baseline). KubeflowV2DagRunner compiles only Resolver nodes
    # with a strategy class (tfx/orchestration/kubeflow/v2/step_builder.py, TFX 1.16), so on a
    # cluster passing AnomalyGates record the accepted spans under the pipeline root and two
    # ordinary tasks read that record (components/accepted_spans.py).
    resolves_earlier_spans: bool
    # Where the latest blessed model comes from: TFX's LatestBlessedModelStrategy resolver
    # ("resolver"), or an ordinary task reading the serving folder ("serving": open-source KFP's
    # argo compiler refuses resolver executors, backend/src/v2/compiler/argocompiler/argo.go
    # "resolver not implemented yet", tags 2.0.5-2.15.0; components/served_baseline.py).
    baseline: str
    # ML Metadata: SQLite under the workdir (local), or the backend's own store.
    local_metadata: bool
    # The backend runs ExampleGen's driver (lifecycle.preCacheCheck), which resolves the newest
    # span and keys the cache on the data's fingerprint. Open-source KFP runs none, so there
    # ExampleGen and ServedModel are not cached (they read outside the DAG) and the spec keeps
    # no lifecycle hook.
    runs_example_gen_driver: bool
    # The spec files compiled for it: .yaml PipelineSpec (kfp), .json PipelineJob (Vertex AI).
    spec_suffixes: Tuple[str, ...] = ()

    def check(self, run) -> None:
        """Refuses, in one line, an option this target cannot run (`run` is a RunConfig)."""
        if run.ingest_span is not None and not self.resolves_earlier_spans:
            raise TargetError(f"{self.what} runs ingest the newest span only (no backfill)")
        if self.local_metadata != bool(run.metadata_path):
            raise TargetError(f"{self.what} runs keep ML Metadata " + ("in the workdir" if self.local_metadata else "in the backend"))


LOCAL = Target("local", "local", True, "resolver", True, True)
KFP = Target("kfp", "open-source Kubeflow Pipelines", False, "serving", False, False, (".yaml", ".yml"))
VERTEX = Target("vertex", "Vertex AI Pipelines", False, "resolver", False, True, (".json",))
TARGETS = {target.name: target for target in (LOCAL, KFP, VERTEX)}
CLUSTER_TARGETS = (KFP.name, VERTEX.name)


def named(name: str) -> Target:
    if name not in TARGETS:
        raise TargetError(f"target {name!r}: one of {', '.join(TARGETS)}")
    return TARGETS[name]
