"""Measuring one command: wall time, the peak memory of its whole process tree, and how busy
the rest of the machine was meanwhile (a figure taken beside other work is not a figure)."""

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
# A measurement during which other processes used more than this share of the machine's CPU
# time is marked busy: on 2 cores one stray job halves what a component gets.
BUSY_FOREIGN_SHARE = 0.10
# Before the benchmark starts: a 1-minute load average above this per core, or any other process
# above FOREIGN_PROCESS_PERCENT of a core, means the machine is busy.
BUSY_LOAD_PER_CORE = 0.25
FOREIGN_PROCESS_PERCENT = 10.0
COMMAND_CHARS = 160  # of each process's command line recorded at the memory peak


@dataclasses.dataclass
class Measurement:
    command: List[str]
    wall_seconds: float
    peak_rss_bytes: int  # the largest sum of RSS over the process and all its children
    returncode: int
    stdout: str
    load_before: float  # the 1-minute load average when the command started
    foreign_cpu_share: float  # CPU time of other processes / (wall time x cores) while it ran
    # At the peak: each process of the tree, largest first, as (RSS bytes, its command line):
    # where the memory went, e.g. the Evaluator's worker processes (issue 28).
    peak_processes: List[tuple] = dataclasses.field(default_factory=list)
    # Of foreign_cpu_share, what the hypervisor gave to other guests (steal time): on a VM
    # a busy neighbour slows every figure without a single process here to show for it.
    steal_share: float = 0.0

    @property
    def busy(self) -> bool:
        return self.foreign_cpu_share > BUSY_FOREIGN_SHARE

    def summary(self) -> dict:
        return {
            "wall_seconds": round(self.wall_seconds, 2),
            "peak_rss_mb": round(self.peak_rss_bytes / 2**20),
            "load_before": round(self.load_before, 2),
            "foreign_cpu_share": round(self.foreign_cpu_share, 3),
            "steal_share": round(self.steal_share, 3),
            "busy": self.busy,
            "peak_processes": [{"rss_mb": round(rss / 2**20), "command": command} for rss, command in self.peak_processes],
        }


def _tree_rss(process: psutil.Process) -> List[tuple]:
    """(RSS bytes, command line) of the process and every descendant, largest first."""
    members = []
    for member in [process, *process.children(recursive=True)]:
        try:
            members.append((member.memory_info().rss, " ".join(member.cmdline())[:COMMAND_CHARS]))
        except psutil.Error:  # exited between listing and reading
            pass
    return sorted(members, reverse=True)


def _busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent on anything but idling, since boot (steal
    included: time a virtual CPU wanted to run and the hypervisor ran another guest)."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def _steal_cpu_seconds() -> float:
    """CPU seconds the hypervisor has given to other guests since boot (0 off a VM)."""
    return getattr(psutil.cpu_times(), "steal", 0.0)


def _own_cpu_seconds() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system


def measure(command: List[str], cwd: Optional[str] = None) -> Measurement:
    """Runs `command` to completion, sampling the memory of its process tree; the CPU time
    the rest of the machine used meanwhile is the machine's busy time minus the command's
    (its rusage, which counts every descendant it waited for) minus this sampler's."""
    load_before = os.getloadavg()[0]
    machine_before, own_before, steal_before = _busy_cpu_seconds(), _own_cpu_seconds(), _steal_cpu_seconds()
    started = time.monotonic()
    with open(os.devnull, "rb") as stdin:
        child = subprocess.Popen(command, cwd=cwd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    process = psutil.Process(child.pid)
    peak, peak_processes = 0, []
    chunks = []
    os.set_blocking(child.stdout.fileno(), False)
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        try:
            members = _tree_rss(process)
        except psutil.Error:
            members = []
        total = sum(rss for rss, _ in members)
        if total > peak:
            peak, peak_processes = total, members
        chunks.append(child.stdout.read() or b"")
        time.sleep(SAMPLE_SECONDS)
    wall = time.monotonic() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    machine_seconds, own_seconds = _busy_cpu_seconds() - machine_before, _own_cpu_seconds() - own_before
    cores = os.cpu_count() or 1
    os.set_blocking(child.stdout.fileno(), True)
    chunks.append(child.stdout.read() or b"")
    return Measurement(
        command,
        wall,
        peak,
        child.returncode,
        b"".join(chunks).decode(errors="replace"),
        load_before,
        foreign_cpu_share(machine_seconds, usage.ru_utime + usage.ru_stime, own_seconds, wall, cores),
        peak_processes,
        steal_share=(_steal_cpu_seconds() - steal_before) / (wall * cores),
    )


def foreign_cpu_share(machine_seconds: float, command_seconds: float, sampler_seconds: float, wall: float, cores: int) -> float:
    """The share of the machine's CPU capacity that other processes used while the command ran:
    the machine's busy CPU seconds minus the command's (its rusage, every descendant it waited
    for included) and this sampler's, over wall time x cores."""
    foreign = machine_seconds - command_seconds - sampler_seconds
    return max(0.0, foreign) / (wall * cores)


def machine_load(sample_seconds: float = 2.0) -> dict:
    """How busy the machine is right now: the load averages, every other process that used
    more than FOREIGN_PROCESS_PERCENT of a core over `sample_seconds`, and the hypervisor's
    steal time over them (asked before the benchmark starts anything of its own). Steal above
    BUSY_FOREIGN_SHARE is busy too: the load average does not count it. An idle guest is
    rarely stolen from, so this catches only a crowded host; each measurement's steal_share is
    the figure that counts (bench/notes.md, "The scale run with bytecode, on a stolen-from
    host")."""
    steal_before = _steal_cpu_seconds()
    processes = [p for p in psutil.process_iter(["pid", "name", "cmdline"]) if p.pid != os.getpid()]
    for p in processes:
        try:
            p.cpu_percent(None)
        except psutil.Error:
            pass
    time.sleep(sample_seconds)
    heavy = []
    for p in processes:
        try:
            percent = p.cpu_percent(None)
        except psutil.Error:
            continue
        if percent > FOREIGN_PROCESS_PERCENT:
            heavy.append({"pid": p.pid, "cpu_percent": round(percent), "command": " ".join(p.info["cmdline"] or [p.info["name"]])[:200]})
    load = os.getloadavg()
    steal = (_steal_cpu_seconds() - steal_before) / (sample_seconds * (os.cpu_count() or 1))
    busy = load[0] > BUSY_LOAD_PER_CORE * os.cpu_count() or bool(heavy) or steal > BUSY_FOREIGN_SHARE
    return {"loadavg": [round(x, 2) for x in load], "heavy_processes": heavy, "steal_share": round(steal, 3), "busy": busy}


def load_or_exit(load_per_core: float = 0.5) -> float:
    """The 1-minute load average, after refusing to go on above `load_per_core` per core: the
    quiet-machine check of the standalone benchmarks (bench.warm_start, bench.weekly_transform)."""
    load = os.getloadavg()[0]
    if load > load_per_core * (os.cpu_count() or 1):
        sys.exit(f"the machine is busy (load average {load:.2f}); run the benchmark on a quiet machine")
    return load


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
