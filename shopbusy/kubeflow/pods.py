"""A task's container command as a process of its own, started from an interpreter that has
already imported what the image's entrypoints import.

Every TFX task of the spec runs `python -m shopbusy.kubeflow.entrypoint`, and its first half
minute goes to importing TensorFlow, TFX, Beam, TFMA and TFDV: a pod pays that once, run-local
would pay it for each of a run's eleven tasks. The standard library's forkserver
(`multiprocessing`, preloaded modules) imports them once and forks a fresh process per task.
That process gets the pod's argv, working directory, environment and log, runs the module as
`python -m` does (runpy) and exits as an interpreter does (atexit handlers, then its exit
code), so the task's own code, flags and exit code are a container's; what it does not repeat
is the import. Commands that are not `python -m MODULE` run as plain subprocesses.
"""

import atexit
import multiprocessing
import os
import runpy
import signal
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

_context = None


def preload(modules: Sequence[str]) -> None:
    """Imports `modules` once, in the forkserver every later command forks from. Call before
    the first command; a module that fails to import there is imported again, and the failure
    reported, by the command itself."""
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(sorted(set(modules)))


def run(argv: List[str], cwd: str, env: Dict[str, str], log_path: str) -> int:
    """Runs the container command `argv` in `cwd` with `env`, stdout and stderr to `log_path`;
    returns its exit code."""
    module = _python_module(argv)
    if module is None or _context is None:
        with open(log_path, "w") as log:
            return subprocess.call(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    return run_module(module, argv[3:], cwd, env, log_path)


def run_module(
    module: str,
    args: Sequence[str],
    cwd: str,
    env: Dict[str, str],
    stdout_path: str,
    stderr_path: Optional[str] = None,
    timeout: Optional[float] = None,
) -> int:
    """`python -m module args` forked from the preloaded interpreter; stderr goes with stdout
    unless `stderr_path`. After `timeout` seconds the process and its children are killed and
    subprocess.TimeoutExpired raised, as subprocess.run does."""
    if _context is None:
        raise RuntimeError("pods.preload() first")
    process = _context.Process(
        target=_run_module, args=(module, list(args), cwd, env, stdout_path, stderr_path), name=module
    )
    process.start()
    process.join(timeout)
    if process.exitcode is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # its own group: Beam's workers go too
        except ProcessLookupError:
            pass
        process.join()
        raise subprocess.TimeoutExpired([module, *args], timeout)
    return process.exitcode if process.exitcode >= 0 else 128 - process.exitcode  # a signal, as a shell says


def _python_module(argv: List[str]) -> Optional[str]:
    if len(argv) >= 3 and argv[0] == sys.executable and argv[1] == "-m":
        return argv[2]
    return None


def _run_module(module, args, cwd, env, stdout_path, stderr_path) -> None:
    """In the forked process: a process group, the pod's log, directory and environment, then
    `python -m module args`, then the interpreter's exit."""
    os.setpgrp()
    for fd, path in ((1, stdout_path), (2, stderr_path or stdout_path)):
        if fd == 2 and not stderr_path:
            os.dup2(1, 2)
            continue
        opened = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(opened, fd)
        os.close(opened)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        atexit._run_exitfuncs()  # noqa: SLF001  multiprocessing ends its children with os._exit
        sys.stdout.flush()
        sys.stderr.flush()
