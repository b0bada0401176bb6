"""Runs the pipeline on this machine (LocalDagRunner, Beam DirectRunner, SQLite MLMD)
and tells what happened: component progress while it runs, the gates and the push after."""

import ctypes
import ctypes.util
import gc
import logging
import os
import re
import threading
import time
from typing import Callable

from absl import flags

from shopbusy.pipeline import config
from shopbusy.pipeline.pipeline import create_pipeline
from shopbusy.pipeline.tfx_api import tfx


# LocalDagRunner's log line before and after each component
# (tfx/orchestration/local/local_dag_runner.py at 1.16.0).
COMPONENT_EVENT = re.compile(r"Component (\S+) is (running|finished)\.")


class _ProgressHandler(logging.Handler):
    """Turns LocalDagRunner's 'Component X is running/finished.' log lines into progress lines."""

    def __init__(self, out: Callable[[str], None]):
        super().__init__(level=logging.INFO)
        self._out = out
        self._run_start = time.monotonic()
        self._started = {}

    def emit(self, record: logging.LogRecord) -> None:
        match = COMPONENT_EVENT.match(record.getMessage())
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


def _malloc_trim() -> Callable[[int], int]:
    """glibc's malloc_trim, or a stand-in that does nothing where the C library has none."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
    return getattr(libc, "malloc_trim", lambda pad: 0)


class _ReturnFreedMemory(logging.Handler):
    """After each component, hands the memory it freed back to the operating system.

    LocalDagRunner runs every component in this one process, one after the other. What a
    component frees stays in the C heap, where glibc keeps it for reuse: after the Trainer at
    a million rows this process held 3.2 GB of which 1.9 GB was free heap, and held it on
    through the Evaluator, beside the Evaluator's two Beam workers. A full `gc.collect()`
    first frees what the component left in reference cycles, then `malloc_trim(0)` returns the
    free pages: the run's peak fell from 6,056 to 4,168-4,268 MB, no slower; the trim alone,
    without the collection, left it at 4,762 MB (bench/notes.md, "A million rows again").
    Python has no call for the trim; on KFP each component is its own process, so only this runner
    needs it. run() freezes what existed before the pipeline (`gc.freeze`: TensorFlow's and
    TFX's 600,000 objects), which takes each collection from 0.3 s to milliseconds."""

    def __init__(self):
        super().__init__(level=logging.INFO)
        self._trim = _malloc_trim()

    def emit(self, record: logging.LogRecord) -> None:
        match = COMPONENT_EVENT.match(record.getMessage())
        if match and match.group(2) == "finished":
            gc.collect()
            self._trim(0)


# Fault injection for tests (tests/test_faults.py): a regular expression. The first TFX log
# line that matches it stops the thread that wrote it, for good, after saying so on the
# console; the test then kills the run knowing it is inside that component's work, at any
# machine speed. Unset (always, outside the fault tests) it does nothing.
PAUSE_ENV = "SHOPBUSY_PAUSE_ON"
PAUSED = "shopbusy: paused for fault injection at: "


class _PauseHandler(logging.Handler):
    """Holds the executor that logs a line matching $SHOPBUSY_PAUSE_ON where it is."""

    def __init__(self, pattern: str, out: Callable[[str], None]):
        super().__init__(level=logging.INFO)
        self._pattern = re.compile(pattern)
        self._out = out

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if self._pattern.search(message):
            self._out(PAUSED + message)
            threading.Event().wait()  # never set: only a signal ends this process now


def run(run_config: config.RunConfig, out: Callable[[str], None] = print) -> None:
    """Runs the whole pipeline (ML Metadata records what happened: results.runs reads it);
    raises what the failing component raised."""
    handlers = [_ProgressHandler(out), _ReturnFreedMemory()]
    if os.environ.get(PAUSE_ENV):
        handlers.append(_PauseHandler(os.environ[PAUSE_ENV], out))
    absl_logger = logging.getLogger("absl")
    for handler in handlers:
        absl_logger.addHandler(handler)
    absl_logger.setLevel(logging.INFO)
    # TFX's Beam executors re-parse absl flags, which resets the absl logger to the
    # --verbosity default (WARNING) and would silence the lines the progress comes from.
    flags.FLAGS.set_default("verbosity", 0)
    gc.freeze()  # what is loaded by now lives as long as the process: no collection walks it
    try:
        tfx.orchestration.LocalDagRunner().run(create_pipeline(run_config))
    finally:
        gc.unfreeze()
        for handler in handlers:
            absl_logger.removeHandler(handler)
