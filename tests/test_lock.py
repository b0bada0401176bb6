"""One run per workdir: a second is refused at once naming the holder, or queues with
--wait; a lock whose holder was killed is taken over."""

import signal
import subprocess
import sys
import threading
import time

import pytest

from shopbusy.cli.lock import WorkdirBusyError, workdir_lock
from shopbusy.pipeline import config
from tests.helpers import run_cli

HOLD = "import sys, time\nfrom shopbusy.cli.lock import workdir_lock\nwith workdir_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)\n"


@pytest.fixture
def holder(tmp_path):
    """Another process holding tmp_path's lock."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    yield process
    process.kill()
    process.wait()


def test_a_held_workdir_is_refused_naming_the_holder(tmp_path, holder):
    with pytest.raises(WorkdirBusyError, match=f"in use by pid {holder.pid} on "):
        with workdir_lock(str(tmp_path)):
            pass


def test_a_killed_holders_lock_is_taken_over(tmp_path, holder):
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    taken_from = []
    with workdir_lock(str(tmp_path), on_takeover=taken_from.append):
        pass
    assert taken_from and f"pid {holder.pid}" in taken_from[0]
    with workdir_lock(str(tmp_path), on_takeover=taken_from.append):
        pass  # a clean exit leaves nothing to take over
    assert len(taken_from) == 1


def test_wait_queues_until_the_holder_is_gone(tmp_path, holder):
    acquired = threading.Event()

    def wait_for_lock():
        with workdir_lock(str(tmp_path), wait=True):
            acquired.set()

    thread = threading.Thread(target=wait_for_lock)
    thread.start()
    time.sleep(1.5)
    assert not acquired.is_set()
    holder.kill()
    holder.wait()
    thread.join(timeout=10)
    assert acquired.is_set()


def test_cli_exits_4_while_another_run_holds_the_workdir(tmp_path, holder):
    result = run_cli("run", "--data", config.DEFAULT_DATA, "--workdir", tmp_path, timeout=120)
    assert result.returncode == 4, result.stderr
    assert f"in use by pid {holder.pid}" in result.stderr and "--wait" in result.stderr
