"""Measuring one command: wall time and the peak memory of its whole process tree."""

import dataclasses
import os
import platform
import subprocess
import sys
import time
from importlib import metadata as package_metadata
from typing import List, Optional

import psutil

SAMPLE_SECONDS = 0.1


@dataclasses.dataclass
class Measurement:
    command: List[str]
    wall_seconds: float
    peak_rss_bytes: int  # the largest sum of RSS over the process and all its children
    returncode: int
    stdout: str

    def summary(self) -> dict:
        return {"wall_seconds": round(self.wall_seconds, 2), "peak_rss_mb": round(self.peak_rss_bytes / 2**20)}


def _tree_rss(process: psutil.Process) -> int:
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.Error:  # exited between listing and reading
            pass
    return total


def measure(command: List[str], cwd: Optional[str] = None) -> Measurement:
    """Runs `command` to completion, sampling the memory of its process tree."""
    started = time.monotonic()
    with open(os.devnull, "rb") as stdin:
        child = subprocess.Popen(command, cwd=cwd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    process = psutil.Process(child.pid)
    peak = 0
    chunks = []
    os.set_blocking(child.stdout.fileno(), False)
    while child.poll() is None:
        try:
            peak = max(peak, _tree_rss(process))
        except psutil.Error:
            pass
        chunks.append(child.stdout.read() or b"")
        time.sleep(SAMPLE_SECONDS)
    wall = time.monotonic() - started
    os.set_blocking(child.stdout.fileno(), True)
    chunks.append(child.stdout.read() or b"")
    return Measurement(command, wall, peak, child.returncode, b"".join(chunks).decode(errors="replace"))


def machine() -> dict:
    """What the numbers were measured on."""
    model = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor(),
    )
    return {
        "host": platform.node(),
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "packages": {
            name: package_metadata.version(name)
            for name in ("tfx", "tensorflow", "tensorflow-model-analysis", "apache-beam")
        },
    }
