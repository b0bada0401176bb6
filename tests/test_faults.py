"""Runs killed with SIGKILL inside each component, and runs racing for one workdir.
Slow (one pipeline's worth of runs): `make test-faults`, called by CI after `make test`."""

import os
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from pipeline import config, metadata
from pipeline.predict import served_versions
from tests.conftest import write_dataset

pytestmark = pytest.mark.faults

ARGS = ["--epochs", "5", "--min-accuracy", "0.5", "--max-fpr", "0.6", "--max-fnr", "0.6", "--max-accuracy-drop", "0.5"]
# Where to kill, and how long after the component started: inside its real work.
KILL_POINTS = [("CsvExampleGen", 1.0), ("Transform", 15.0), ("Trainer", 12.0), ("Evaluator", 6.0), ("Pusher", 0.0)]


def _start(data, workdir, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "run", "--data", str(data), "--workdir", str(workdir), *ARGS, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the kill reaches every child
    )


def _wait_for(process, text, timeout=600):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return
    raise AssertionError(f"never saw {text!r}: {''.join(seen)}")


def _states(workdir):
    store = metadata.open_store(config.Workdir(str(workdir)).metadata_path)
    return {e.node: e.state for e in metadata.run_executions(store, metadata.latest_run_id(store))}


def _assert_serving_complete(workdir):
    serving = workdir / "serving"
    for name in os.listdir(serving) if serving.exists() else []:
        if name.isdigit():
            assert os.path.exists(serving / name / "saved_model.pb"), name
            tf.saved_model.load(str(serving / name))  # complete enough to load


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data") / "shops.csv", rows=600, seed=31)


def test_a_run_killed_in_any_component_is_followed_by_one_that_completes_and_reuses(tmp_path, data):
    workdir = tmp_path / "workdir"
    finished_before = []
    for component, delay in KILL_POINTS:
        process = _start(data, workdir)
        _wait_for(process, f"{component} started")
        time.sleep(delay)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        _assert_serving_complete(workdir)
        assert _states(workdir).get(component) in (None, "RUNNING", "NEW"), component  # died in it
        finished_before.append(component)

    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", "--data", data, "--workdir", str(workdir), *ARGS],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    states = _states(workdir)
    # Everything a killed run finished is reused; nothing half-written is.
    for component in ("CsvExampleGen", "StatisticsGen", "Transform", "Trainer"):
        assert states[component] == "CACHED", (component, states)
    assert states["Pusher"] == "COMPLETE"
    _assert_serving_complete(workdir)
    assert served_versions(str(workdir / "serving"))
    assert not os.path.exists(workdir / "serving" / ".staging")


def test_a_second_run_is_refused_while_one_runs_and_waits_with_wait(tmp_path, data):
    workdir = tmp_path / "workdir"
    first = _start(data, workdir)
    _wait_for(first, "CsvExampleGen started")
    refused = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", "--data", data, "--workdir", str(workdir), *ARGS],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 4, refused.stderr
    assert f"in use by pid {first.pid}" in refused.stderr

    waiting = _start(data, workdir, "--wait")
    time.sleep(5)
    assert waiting.poll() is None  # queued behind the first run
    os.killpg(first.pid, signal.SIGKILL)  # its lock dies with it
    first.wait()
    stdout, stderr = waiting.communicate(timeout=1200)
    assert waiting.returncode == 0, stdout + stderr
    assert "took over the workdir" in stdout
    _assert_serving_complete(workdir)
