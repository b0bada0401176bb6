"""Runs the pipeline on this machine (LocalDagRunner, Beam DirectRunner, SQLite MLMD)
and tells what happened: component progress while it runs, the gates and the push after."""

import logging
import re
import time
from typing import Callable

from absl import flags

from pipeline import config, metadata, runs
from pipeline.pipeline import create_pipeline
from pipeline.tfx_api import tfx


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


def run(run_config: config.RunConfig, out: Callable[[str], None] = print) -> runs.RunRecord:
    """Runs the whole pipeline and returns what ML Metadata recorded of it; raises what the
    failing component raised."""
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
    return latest_run(run_config.metadata_path)


def latest_run(metadata_path: str) -> runs.RunRecord:
    store = metadata.open_store(metadata_path)
    return runs.load(store, metadata.latest_run_id(store))
