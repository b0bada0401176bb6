"""Runs killed with SIGKILL inside each component, and runs racing for one workdir.
Slow (one pipeline's worth of runs): `make test-faults`, called by CI after `make test`."""

import os
import signal
import subprocess

import pytest
import tensorflow as tf

from shopbusy.pipeline import config
from shopbusy.pipeline.local_runner import PAUSE_ENV, PAUSED
from shopbusy.results import metadata
from shopbusy.components.served_models import pushed_versions as served_versions
from tests.helpers import SHOPBUSY, write_dataset

pytestmark = pytest.mark.faults

# Gates every model passes: these tests are about faults, and a 5-epoch model on 600 rows
# is not always inside tighter ones (the Pusher must run for its kill point).
ARGS = ["--epochs", "5", "--min-accuracy", "0", "--max-fpr", "1", "--max-fnr", "1", "--max-accuracy-drop", "1"]
# Where to kill: the line each component's executor logs as its real work begins (the
# Pusher's once the model is copied into staging, before the rename that publishes it). The
# run pauses on that line (shopbusy/pipeline/local_runner.py, $SHOPBUSY_PAUSE_ON), so the kill lands
# inside the component whatever the machine's speed.
KILL_POINTS = [
    ("CsvExampleGen", r"^Generating examples\.$"),
    ("Transform", r"^udf_utils\.get_fn .*'preprocessing_fn'$"),  # loading the user code
    ("Trainer", r"^Training model\.$"),
    ("Evaluator", r"^Evaluating model\.$"),
    ("Pusher", r"^Model written to serving path .*\.staging"),
]


def _start(data, workdir, *extra, pause_on=None):
    env = dict(os.environ, **({PAUSE_ENV: pause_on} if pause_on else {}))
    return subprocess.Popen(
        [*SHOPBUSY, "run", "--data", str(data), "--workdir", str(workdir), *ARGS, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own process group: the kill reaches every child
    )


def _wait_for(process, text):
    """Reads the run's console until a line contains `text`; returns the lines read."""
    seen = []
    for line in process.stdout:
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"never saw {text!r}: {''.join(seen)}{process.stderr.read()}")


def _kill_paused_in(process, component):
    """Waits until the run is paused inside `component`, then kills its process group."""
    seen = _wait_for(process, PAUSED)
    started = [line for line in seen if line.rstrip().endswith(" started")]
    assert started and started[-1].rstrip().endswith(f"] {component} started"), seen  # paused in that one
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


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
    for component, pause_on in KILL_POINTS:
        _kill_paused_in(_start(data, workdir, pause_on=pause_on), component)
        _assert_serving_complete(workdir)
        assert _states(workdir)[component] == "RUNNING", component  # died in it, never completed
    # The last kill landed half way through the push: a model in staging, none published.
    staged = os.listdir(workdir / "serving" / ".staging")
    assert staged and os.path.exists(workdir / "serving" / ".staging" / staged[0] / "saved_model.pb")
    assert not served_versions(str(workdir / "serving"))

    result = subprocess.run(
        [*SHOPBUSY, "run", "--data", data, "--workdir", str(workdir), *ARGS],
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
    first = _start(data, workdir, pause_on=r"^Training model\.$")  # holds the workdir until killed
    _wait_for(first, PAUSED)
    refused = subprocess.run(
        [*SHOPBUSY, "run", "--data", data, "--workdir", str(workdir), *ARGS],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 4, refused.stderr
    assert f"in use by pid {first.pid}" in refused.stderr

    waiting = _start(data, workdir, "--wait")
    assert f"in use by pid {first.pid}" in _wait_for(waiting, "waiting for it (--wait)")[-1]
    assert waiting.poll() is None  # queued behind the first run
    os.killpg(first.pid, signal.SIGKILL)  # its lock dies with it
    first.wait()
    stdout, stderr = waiting.communicate(timeout=1200)
    assert waiting.returncode == 0, stdout + stderr
    assert "took over the workdir" in stdout
    _assert_serving_complete(workdir)
