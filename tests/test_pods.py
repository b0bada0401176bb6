"""A command forked from the preloaded interpreter behaves as `python -m` in a fresh process:
its argv, directory, environment, streams, atexit handlers and exit code; killed with its
children on a timeout (shopbusy/kubeflow/pods.py, used by run-local and by tests/helpers.py)."""

import os
import subprocess
import time

import pytest

from shopbusy.kubeflow import pods
from tests.helpers import CLI_PRELOAD


@pytest.fixture(autouse=True)
def preloaded():
    pods.preload(CLI_PRELOAD)  # the test process's one forkserver, as run_cli starts it


def test_a_module_runs_with_its_argv_directory_environment_streams_and_exit_code(tmp_path):
    out, err = tmp_path / "out", tmp_path / "err"
    code = pods.run_module("tests.pod_probe", ["3", "x y"], str(tmp_path), dict(os.environ, PROBE="p"), str(out), str(err))
    assert code == 3
    assert out.read_text().splitlines() == [f"argv=['3', 'x y'] cwd={tmp_path} probe=p", "exiting"]
    assert err.read_text() == "to stderr\n"
    log = tmp_path / "log"
    assert pods.run_module("tests.pod_probe", ["0"], str(tmp_path), {}, str(log)) == 0
    assert "probe=None" in log.read_text() and "to stderr" in log.read_text()


def test_a_timeout_kills_the_process_and_its_children(tmp_path):
    pid_file = tmp_path / "child"
    # The probe writes its child's pid at once and then sleeps 600 s: the timeout is far
    # longer than that first step takes on any machine once the forkserver has imported what
    # it preloads (the run before it waits for that), and far shorter than the sleep.
    assert pods.run_module("tests.pod_probe", ["0"], str(tmp_path), dict(os.environ), str(tmp_path / "first")) == 0
    with pytest.raises(subprocess.TimeoutExpired):
        pods.run_module("tests.pod_probe", ["hang", str(pid_file)], str(tmp_path), dict(os.environ), str(tmp_path / "log"), timeout=30)
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.1)
    assert not _alive(child)


def test_commands_that_are_not_python_modules_run_as_subprocesses(tmp_path):
    log = tmp_path / "log"
    assert pods.run(["sh", "-c", "echo $PROBE; pwd; exit 4"], str(tmp_path), {"PROBE": "q"}, str(log)) == 4
    assert log.read_text().splitlines() == ["q", str(tmp_path)]


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[1].split()[0] != "Z"  # a zombie is dead, waiting for its parent
    except FileNotFoundError:
        return False
