"""The benchmark's load check: figures taken beside other work are refused or marked, never
passed off as quiet-machine numbers."""

import os
import subprocess
import sys

import pytest

from bench import measure, report, run

# One core kept busy by a process outside the measured command's tree: the tests that use it
# assert "at least this busy", which other work on the machine can only make truer.
BURNER = [sys.executable, "-c", "while True: pass"]


@pytest.fixture
def burner():
    process = subprocess.Popen(BURNER)
    yield process
    process.kill()
    process.wait()


def test_a_measurement_beside_another_busy_process_is_marked_busy(burner):
    measured = measure.measure(["sleep", "2"])
    assert measured.returncode == 0
    # One of the machine's cores went to the burner: far above the busy share.
    assert measured.foreign_cpu_share > measure.BUSY_FOREIGN_SHARE
    assert measured.summary()["busy"] is True


def test_the_memory_peak_names_each_process_of_the_tree():
    """A parent holding little and a child holding 200 MB: the peak is their sum, the child first."""
    child = "import time; x = bytearray(200 * 2**20); x[::4096] = b'1' * len(x[::4096]); time.sleep(1.5)"
    parent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}])"
    measured = measure.measure([sys.executable, "-c", parent])
    assert measured.returncode == 0
    (largest, largest_command), *rest = measured.peak_processes
    assert largest_command.startswith(sys.executable) and "bytearray" in largest_command
    assert largest > 200 * 2**20 and [command for _, command in rest] == [f"{sys.executable} -c {parent}"[: measure.COMMAND_CHARS]]
    assert measured.peak_rss_bytes == sum(rss for rss, _ in measured.peak_processes)
    assert measured.summary()["peak_processes"][0]["rss_mb"] >= 200


def test_the_commands_own_cpu_time_is_not_counted_as_foreign():
    """The accounting on recorded samples (no assertion on how busy this machine is): a
    command that kept one of 2 cores busy for 10 s, its sampler 0.2 s, nothing else."""
    assert measure.foreign_cpu_share(10.2, 10.0, 0.2, wall=10.0, cores=2) == 0.0
    # The same with another process on the other core for the whole 10 s: half the machine.
    assert measure.foreign_cpu_share(20.2, 10.0, 0.2, wall=10.0, cores=2) == pytest.approx(0.5)
    # Clock and accounting jitter never make the share negative.
    assert measure.foreign_cpu_share(9.9, 10.0, 0.2, wall=10.0, cores=2) == 0.0


def test_machine_load_names_the_heavy_process(burner):
    load = measure.machine_load(sample_seconds=1.0)
    assert load["busy"]
    assert burner.pid in [process["pid"] for process in load["heavy_processes"]]


def _stolen(monkeypatch, seconds_per_call: float) -> None:
    """The hypervisor's steal counter, advancing by `seconds_per_call` at each read."""
    counter = iter(range(1000))
    monkeypatch.setattr(measure, "_steal_cpu_seconds", lambda: seconds_per_call * next(counter))


def test_steal_time_is_recorded_apart_and_at_the_start_makes_a_quiet_machine_busy(monkeypatch):
    """A VM whose host gives a fifth of its CPU to other guests: no process here shows it, the
    load average does not count it, and every figure slows down (bench/notes.md)."""
    cores = os.cpu_count()
    _stolen(monkeypatch, 0.2 * 1.0 * cores)  # a fifth of every core over the 1 s sample
    monkeypatch.setattr(measure.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setattr(measure.psutil, "process_iter", lambda attrs: [])
    load = measure.machine_load(sample_seconds=1.0)
    assert load["steal_share"] == pytest.approx(0.2) and load["heavy_processes"] == [] and load["busy"]
    _stolen(monkeypatch, 0.0)
    assert not measure.machine_load(sample_seconds=1.0)["busy"]

    _stolen(monkeypatch, 3.0)
    measured = measure.measure(["sleep", "1"])
    assert measured.steal_share == pytest.approx(3.0 / (measured.wall_seconds * cores))
    assert measured.summary()["steal_share"] == round(measured.steal_share, 3)


def test_the_load_line_gives_the_hypervisors_share_when_it_was_recorded():
    start = {"loadavg": [0.1, 0.2, 0.3], "heavy_processes": [], "busy": False}
    quiet = {**_run(80, busy=False), "steal_share": 0.01}
    stolen = {**_run(90, busy=True), "steal_share": 0.12}
    line = report._load_line({"load_at_start": start, "datasets": {"bundled": {"shopbusy": [quiet, stolen]}}})
    assert "steal time" in line and "at most 12.0%" in line and "1 of 2 measurements" in line
    # Results from before steal was recorded say nothing of it.
    assert "steal" not in report._load_line({"load_at_start": start, "datasets": {"bundled": {"shopbusy": [_run(80, busy=False)]}}})


def test_the_full_benchmark_refuses_a_busy_machine(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(
        run, "machine_load", lambda: {"loadavg": [3.1, 2.0, 1.0], "heavy_processes": [], "steal_share": 0.12, "busy": True}
    )
    code = run.main(["--results-dir", str(tmp_path / "results"), "--doc", str(tmp_path / "doc.md")])
    assert code == 1
    refusal = capsys.readouterr().err
    assert "the machine is busy" in refusal and "steal time 12%" in refusal
    assert not (tmp_path / "results").exists() and not (tmp_path / "doc.md").exists()


def _run(wall: float, busy: bool) -> dict:
    return {"wall_seconds": wall, "peak_rss_mb": 900, "foreign_cpu_share": 0.5 if busy else 0.0, "busy": busy}


def test_targets_say_which_figures_shared_the_machine():
    results = {
        "plan": {"scale_rows": []},
        "scale": {},
        "datasets": {
            "bundled": {
                "bayes_accuracy": 0.9,
                "shopbusy": [{**_run(80, busy=False), "test_accuracy": 0.89, "rerun_unchanged": _run(2, busy=False)}],
                "baseline": [_run(25, busy=True)],
            }
        },
    }
    targets = {t["target"].split(" <=")[0]: t for t in report.targets(results)}
    assert targets["fresh run"]["busy"] and "busy machine" in targets["fresh run"]["measured"]
    assert not targets["cached re-run"]["busy"] and "busy" not in targets["cached re-run"]["measured"]


def test_a_run_of_some_rules_measures_only_those_and_writes_beside_the_full_results(monkeypatch, tmp_path):
    monkeypatch.setattr(
        run, "machine_load", lambda: {"loadavg": [0.1, 0.1, 0.1], "heavy_processes": [], "steal_share": 0.0, "busy": False}
    )
    monkeypatch.setattr(run, "import_times", lambda plan: {})
    planned = []
    monkeypatch.setattr(run, "runs_and_quality", lambda plan, scratch, datasets, save: planned.append(plan))
    results, doc = tmp_path / "results", tmp_path / "benchmarks.md"
    args = ["--results-dir", str(results), "--doc", str(doc), "--scenarios", "quality"]
    code = run.main([*args, "--datasets", "noisy,bundled"])
    assert code == 0
    assert list(planned[0].datasets.items()) == [("noisy", 7), ("bundled", 42)]
    [written] = os.listdir(results)
    assert written.endswith("-quality-noisy-bundled.json")
    with pytest.raises(SystemExit):
        run.main([*args, "--datasets", "bundled,weekend"])
