"""One run at a time per workdir: ML Metadata's SQLite file and serving/ are not safe to
share between concurrent runs.

The lock is an flock on WORKDIR/.lock, so the kernel releases it when its holder dies, however
it dies: a lock left by a killed run is simply free, and is taken over. The file names the
holder so that a refused run can say who has the workdir.
"""

import contextlib
import fcntl
import json
import os
import socket
import sys
import time

LOCK_FILE = ".lock"
POLL_SECONDS = 1.0


class WorkdirBusyError(Exception):
    """Another live process holds the workdir."""


def _describe(holder: bytes) -> str:
    """'pid N on HOST (run --data, since T)' from the lock file's contents."""
    try:
        info = json.loads(holder)
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["started"]))
        return f"pid {info['pid']} on {info['host']} ({info['command']}, since {started})"
    except (ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def workdir_lock(workdir: str, wait: bool = False, on_takeover=None, on_wait=None):
    """Holds the workdir for the block. Raises WorkdirBusyError at once, or waits when `wait`
    (calling on_wait(holder) once, when it starts waiting)."""
    path = os.path.join(workdir, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        waiting = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _describe(os.pread(fd, 4096, 0))
                if not wait:
                    raise WorkdirBusyError(f"workdir {workdir} is in use by {holder}; rerun with --wait to queue")
                if not waiting and on_wait:
                    on_wait(holder)
                waiting = True
                time.sleep(POLL_SECONDS)
        previous = os.pread(fd, 4096, 0)
        if previous.strip() and on_takeover:
            on_takeover(_describe(previous))
        os.ftruncate(fd, 0)
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv[1:3]), "started": time.time()}
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        os.fsync(fd)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # a clean exit leaves no holder behind
    finally:
        os.close(fd)
