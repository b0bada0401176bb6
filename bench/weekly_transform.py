"""Weekly runs with and without Transform's analyzer cache (issue 28, item 4).

    python -m bench.weekly_transform [--rows 5600 100000] [--weeks 8] [--train-spans 4]

For each size, generated weeks (seed 1) arrive one by one in two fresh workdirs, and
`shopbusy run --train-spans K` runs after each: once as shipped (Transform reads the analyzer
cache of the last accepted week's Transform) and once with --no-analyzer-cache. Both chains
run `--candidates linear`: the Trainer is not what is measured, and a single cheap candidate
keeps 32 runs inside a session. Per week it records Transform's seconds (ML Metadata), the
whole run's, and whether a cache was read.

Transform's component time also holds what the cache cannot save: TFX's fixed costs and
materializing all K spans for the Trainer. So the analysis alone is timed too, with TFX's
own Transform executor on the cached chain's inputs of each week from K on, with no
materialization and no statistics: the K spans cold, the K spans with the week before's
cache (what the pipeline does), and the new span alone cold. The target (issue 28): from
week K on, the cached analysis of K spans takes no longer than one span's.

Writes bench/results/weekly-transform-<date>.json and prints the tables for docs/benchmarks.md.
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
import time
from typing import List

from bench import measure
from shopbusy.pipeline import config, nodes
from shopbusy.results import metadata, runs

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _shopbusy(*args) -> List[str]:
    return [sys.executable, "-m", "shopbusy.cli", *map(str, args)]


def chain(data: str, workdir: str, weeks: int, train_spans: int, cache: bool) -> list:
    """The weeks arriving one by one; one row per week, each run measured (wall time, memory,
    how busy the rest of the machine was)."""
    arriving = os.path.join(workdir, "data")
    os.makedirs(arriving)
    rows = []
    for week in range(1, weeks + 1):
        shutil.copytree(os.path.join(data, f"span-{week}"), os.path.join(arriving, f"span-{week}"))
        flag = "--analyzer-cache" if cache else "--no-analyzer-cache"
        done = measure.measure(
            _shopbusy(
                "run", "--data", arriving, "--workdir", os.path.join(workdir, "w"), "--train-spans", train_spans,
                "--candidates", "linear", flag,
            )
        )  # fmt: skip
        if done.returncode not in (0, 3):  # 3: trained but not blessed, still a full week
            raise RuntimeError(f"week {week} exited {done.returncode}:\n{done.stdout[-3000:]}")
        record = runs.latest(config.Workdir(os.path.join(workdir, "w")).metadata_path)
        transform = record.executions[nodes.TRANSFORM]
        rows.append(
            {
                "week": week,
                "exit": done.returncode,
                "run_seconds": round(done.wall_seconds, 1),
                **{key: value for key, value in done.summary().items() if key != "peak_processes"},
                "transform_seconds": transform.seconds,
                "training_spans": record.training_spans,
                "cache_read": bool(transform.inputs.get("analyzer_cache")),
            }
        )
        print(json.dumps({"cache": cache, **rows[-1]}), flush=True)
    return rows


def _artifact(artifact_class, uri: str, split_names=None):
    artifact = artifact_class()
    artifact.uri = uri
    if split_names is not None:
        artifact.split_names = split_names
    return artifact


def analysis_seconds(examples, schema_uri, exec_properties, cache_uri, scratch) -> float:
    """TFX's Transform executor analysing `examples` (MLMD artifacts) with no materialization
    and no statistics, optionally from a cache folder; wall seconds."""
    from tfx.components.transform import executor as transform_executor
    from tfx.types import standard_artifacts

    os.makedirs(scratch)
    inputs = {
        "examples": [
            _artifact(standard_artifacts.Examples, e.uri, metadata.string_property(e, "split_names")) for e in examples
        ],
        "schema": [_artifact(standard_artifacts.Schema, schema_uri)],
    }
    if cache_uri:
        inputs["analyzer_cache"] = [_artifact(standard_artifacts.TransformCache, cache_uri)]
    outputs = {
        "transform_graph": [_artifact(standard_artifacts.TransformGraph, os.path.join(scratch, "graph"))],
        "updated_analyzer_cache": [_artifact(standard_artifacts.TransformCache, os.path.join(scratch, "cache"))],
    }
    started = time.monotonic()
    transform_executor.Executor().Do(inputs, outputs, exec_properties)
    return round(time.monotonic() - started, 2)


def analyses(workdir: str, train_spans: int, scratch: str) -> list:
    """The analysis alone, per week from `train_spans` on, over the cached chain's inputs."""
    store = metadata.open_store(config.Workdir(os.path.join(workdir, "w")).metadata_path)
    records = sorted((runs.load(store, run_id) for run_id in metadata.run_ids(store)), key=lambda r: r.span or 0)
    rows, warmed_up = [], False
    for record in records:
        transform = record.executions.get(nodes.TRANSFORM)
        if transform is None or len(transform.inputs["examples"]) < train_spans:
            continue
        examples = sorted(transform.inputs["examples"], key=metadata.span)
        [schema] = transform.inputs["schema"]
        [cache] = transform.inputs.get("analyzer_cache") or [None]
        exec_properties = {
            "preprocessing_fn": config.PREPROCESSING_FN,
            "custom_config": metadata.custom_property(transform.execution, "custom_config"),
            "disable_statistics": 1,
            "force_tf_compat_v1": 0,
        }
        week = record.span
        folder = os.path.join(scratch, f"week-{week}")
        if not warmed_up:  # the process's first analysis pays one-off costs; not counted
            analysis_seconds(examples[-1:], schema.uri, exec_properties, None, folder + "-warm-up")
            warmed_up = True
        row = {
            "week": week,
            "cold_k_spans": analysis_seconds(examples, schema.uri, exec_properties, None, folder + "-cold"),
            "cached_k_spans": analysis_seconds(
                examples, schema.uri, exec_properties, cache.uri if cache else None, folder + "-cached"
            ),
            "cold_new_span": analysis_seconds(examples[-1:], schema.uri, exec_properties, None, folder + "-one"),
            "cache_from": cache.uri if cache else None,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def size(rows: int, weeks: int, train_spans: int, seed: int, scratch: str) -> dict:
    """One size: generated weeks through both chains, then the analysis alone."""
    data = os.path.join(scratch, f"data-{rows}")
    generate = subprocess.run(
        _shopbusy("generate", "--weeks", weeks, "--rows", rows, "--seed", seed, "--out", data), capture_output=True, text=True
    )
    if generate.returncode:
        raise RuntimeError(generate.stderr)
    measured = {"rows": rows}
    for cache in (True, False):
        workdir = os.path.join(scratch, f"{rows}-{'cache' if cache else 'none'}")
        measured["with_cache" if cache else "without_cache"] = chain(data, workdir, weeks, train_spans, cache)
    measured["analysis"] = analyses(os.path.join(scratch, f"{rows}-cache"), train_spans, os.path.join(scratch, f"analysis-{rows}"))
    return measured


def tables(document: dict) -> str:
    lines = []
    for size in document["sizes"]:
        lines += [
            f"\n{size['rows']:,} rows a week, --train-spans {document['train_spans']}: Transform's seconds per week "
            "(ML Metadata), with and without the cache\n",
            "| week | spans trained | with cache | without | run with cache | run without | cache read |",
            "|---|---|---|---|---|---|---|",
        ]
        for cached, cold in zip(size["with_cache"], size["without_cache"]):
            lines.append(
                f"| {cached['week']} | {','.join(map(str, cached['training_spans']))} | {cached['transform_seconds']:.1f} "
                f"| {cold['transform_seconds']:.1f} | {cached['run_seconds']:.0f} | {cold['run_seconds']:.0f} "
                f"| {'yes' if cached['cache_read'] else 'no'} |"
            )
        lines += [
            "\nThe analysis alone (TFX's Transform executor, no materialization, no statistics), seconds:\n",
            "| week | K spans, cold | K spans, with last week's cache | the new span alone, cold | met |",
            "|---|---|---|---|---|",
        ]
        for row in size["analysis"]:
            met = "met" if row["cached_k_spans"] <= row["cold_new_span"] else "**missed**"
            lines.append(
                f"| {row['week']} | {row['cold_k_spans']:.1f} | {row['cached_k_spans']:.1f} | {row['cold_new_span']:.1f} | {met} |"
            )
        if size["analysis"]:
            ratio = statistics.median(r["cached_k_spans"] / r["cold_new_span"] for r in size["analysis"])
            lines.append(f"\nMedian cached analysis / one span's: {ratio:.2f}.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[5600, 100_000])
    parser.add_argument("--weeks", type=int, default=8)
    parser.add_argument("--train-spans", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--table", metavar="JSON", help="only print the tables of an earlier results file")
    args = parser.parse_args()
    if args.table:
        with open(args.table) as f:
            print(tables(json.load(f)))
        return
    load = measure.load_or_exit()
    document = {
        "date": datetime.date.today().isoformat(),
        "machine": {"host": platform.node(), "cpus": os.cpu_count(), "load_average_at_start": load},
        "command": "python -m bench.weekly_transform " + " ".join(sys.argv[1:]),
        "train_spans": args.train_spans,
        "sizes": [],
    }
    out = os.path.join(REPO_ROOT, "bench", "results", f"weekly-transform-{document['date']}.json")
    with tempfile.TemporaryDirectory() as scratch:
        for rows in args.rows:
            document["sizes"].append(size(rows, args.weeks, args.train_spans, args.seed, scratch))
            document["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
            with open(out, "w") as f:
                json.dump(document, f, indent=1)
    print(f"\nwrote {out}")
    print(tables(document))


if __name__ == "__main__":
    main()
