"""Runs the pipeline on this machine (LocalDagRunner, Beam DirectRunner, SQLite MLMD)
and tells what happened: component progress while it runs, the gates and the push after."""

import dataclasses
import logging
import re
import time
from typing import Callable, List, Optional

from absl import flags
from tfx import v1 as tfx

from pipeline import config, metadata, results
from pipeline.pipeline import create_pipeline


@dataclasses.dataclass
class RunOutcome:
    """A finished run as ML Metadata recorded it."""

    run_id: str
    executions: List[metadata.ComponentExecution]
    gates: List[results.GateResult]
    blessed: bool
    pushed_model: Optional[str]


class _ProgressHandler(logging.Handler):
    """Turns LocalDagRunner's 'Component X is running/finished.' log lines into progress lines."""

    PATTERN = re.compile(r"Component (\S+) is (running|finished)\.")

    def __init__(self, out: Callable[[str], None]):
        super().__init__(level=logging.INFO)
        self._out = out
        self._run_start = time.monotonic()
        self._started = {}

    def emit(self, record: logging.LogRecord) -> None:
        match = self.PATTERN.match(record.getMessage())
        if not match:
            return
        node, event = match.groups()
        now = time.monotonic()
        clock = f"[{now - self._run_start:7.1f}s]"
        if event == "running":
            self._started[node] = now
            self._out(f"{clock} {node} started")
        else:
            self._out(f"{clock} {node} finished in {now - self._started.get(node, now):.1f}s")


def run(run_config: config.RunConfig, out: Callable[[str], None] = print) -> RunOutcome:
    """Runs the whole pipeline; raises what the failing component raised."""
    handler = _ProgressHandler(out)
    absl_logger = logging.getLogger("absl")
    absl_logger.addHandler(handler)
    absl_logger.setLevel(logging.INFO)
    # TFX's Beam executors re-parse absl flags, which resets the absl logger to the
    # --verbosity default (WARNING) and would silence the lines the progress comes from.
    flags.FLAGS.set_default("verbosity", 0)
    try:
        tfx.orchestration.LocalDagRunner().run(create_pipeline(run_config))
    finally:
        absl_logger.removeHandler(handler)
    return outcome(run_config.metadata_path, run_config.gates)


def outcome(metadata_path: str, gates: config.Gates) -> RunOutcome:
    """Reads the latest run back from ML Metadata."""
    store = metadata.open_store(metadata_path)
    run_id = metadata.latest_run_id(store)
    executions = metadata.run_executions(store, run_id)
    by_node = {e.node: e for e in executions}
    evaluator, pusher = by_node.get("Evaluator"), by_node.get("Pusher")
    gate_results, blessed, pushed_model = [], False, None
    if evaluator and evaluator.outputs.get("blessing"):
        blessed = metadata.custom_property(evaluator.outputs["blessing"][0], "blessed") == 1
        gate_results = results.gate_results(evaluator.outputs["evaluation"][0].uri, gates)
    if pusher and pusher.outputs.get("pushed_model"):
        pushed = pusher.outputs["pushed_model"][0]
        if metadata.custom_property(pushed, "pushed") == 1:
            pushed_model = metadata.custom_property(pushed, "pushed_destination")
    return RunOutcome(run_id, executions, gate_results, blessed, pushed_model)
