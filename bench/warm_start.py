"""Warm vs cold start over generated weeks: Trainer time and the new model's accuracy on
each new week's eval split, with and without concept drift.

For each seed and world (no drift; concept drift from week 3), the weeks arrive one by one
in a fresh workdir and `shopbusy run` runs with the defaults (gates included), once with
--warm-start and once with --no-warm-start. Week 1 is cold either way.

    .venv/bin/python -m bench.warm_start [--seeds 1 2] [--weeks 4] [--rows 5600]

Writes bench/results/warm-start-<date>.json and prints the table for docs/benchmarks.md.
Needs a quiet machine: it refuses to start above a load average of 0.5 per core.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile

from bench import measure
from shopbusy.pipeline import config, nodes
from shopbusy.results import evaluation, runs

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORLDS = {"none": [], "concept": ["--drift-at", "3", "--drift", "concept"]}


def _shopbusy(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shopbusy.cli", *map(str, args)], capture_output=True, text=True)


def _week_results(data, workdir, weeks, warm) -> list:
    results = []
    arriving = os.path.join(workdir, "data")
    os.makedirs(arriving)
    for week in range(1, weeks + 1):
        shutil.copytree(os.path.join(data, f"span-{week}"), os.path.join(arriving, f"span-{week}"))
        flag = "--warm-start" if warm else "--no-warm-start"
        done = _shopbusy("run", "--data", arriving, "--workdir", os.path.join(workdir, "w"), flag)
        record = runs.latest(config.Workdir(os.path.join(workdir, "w")).metadata_path)
        overall = evaluation.slice_metrics(record.evaluation_uri)[()]
        candidate = evaluation.candidate_name(overall)
        baseline = overall.get((evaluation.ACCURACY, evaluation.BASELINE_MODEL, False)) if candidate else None
        results.append(
            {
                "week": week,
                "exit": done.returncode,
                "trainer_seconds": record.executions[nodes.TRAINER].seconds,
                "epochs_run": record.training["epochs_run"],
                "warm_start": record.warm_start,
                "accuracy": overall.get((evaluation.ACCURACY, candidate, False)),
                "baseline_accuracy": baseline,
                "pushed": bool(record.pushed_model),
            }
        )
    return results


def table(rows: list, weeks: int) -> str:
    """The Markdown table for docs/benchmarks.md: means over seeds, per world and week."""
    lines = [
        "| world | week | Trainer s, warm | Trainer s, cold | epochs warm / cold | accuracy warm | accuracy cold "
        "| last blessed model on the new week (both chains) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for world in WORLDS:
        for week in range(1, weeks + 1):
            warm = [r for r in rows if r["world"] == world and r["week"] == week and r["warm"]]
            cold = [r for r in rows if r["world"] == world and r["week"] == week and not r["warm"]]
            baselines = [r["baseline_accuracy"] for r in warm + cold if r["baseline_accuracy"] is not None]
            baseline = f"{statistics.mean(baselines):.4f}" if baselines else "-"
            lines.append(
                f"| {world} | {week} | {statistics.mean(r['trainer_seconds'] for r in warm):.1f} "
                f"| {statistics.mean(r['trainer_seconds'] for r in cold):.1f} "
                f"| {statistics.mean(r['epochs_run'] for r in warm):.0f} / {statistics.mean(r['epochs_run'] for r in cold):.0f} "
                f"| {statistics.mean(r['accuracy'] for r in warm):.4f} | {statistics.mean(r['accuracy'] for r in cold):.4f} "
                f"| {baseline} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--weeks", type=int, default=4)
    parser.add_argument("--rows", type=int, default=5600)
    parser.add_argument("--table", metavar="JSON", help="only print the table of an earlier results file")
    args = parser.parse_args()
    if args.table:
        with open(args.table) as f:
            document = json.load(f)
        print(table(document["rows"], max(r["week"] for r in document["rows"])))
        return
    load = measure.load_or_exit()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for seed in args.seeds:
            for world, drift in WORLDS.items():
                data = os.path.join(scratch, f"data-{seed}-{world}")
                _shopbusy("generate", "--weeks", args.weeks, "--rows", args.rows, "--seed", seed, "--out", data, *drift)
                for warm in (True, False):
                    workdir = os.path.join(scratch, f"{seed}-{world}-{warm}")
                    for result in _week_results(data, workdir, args.weeks, warm):
                        rows.append({"seed": seed, "world": world, "warm": warm, **result})
                        print(json.dumps(rows[-1]), flush=True)
    document = {
        "date": datetime.date.today().isoformat(),
        "machine": {"host": platform.node(), "cpus": os.cpu_count(), "load_average_at_start": load},
        "command": "python -m bench.warm_start " + " ".join(sys.argv[1:]),
        "rows": rows,
    }
    out = os.path.join(REPO_ROOT, "bench", "results", f"warm-start-{document['date']}.json")
    with open(out, "w") as f:
        json.dump(document, f, indent=1)
    print(f"\nwrote {out}\n")
    print(table(rows, args.weeks))

if __name__ == "__main__":
    main()
