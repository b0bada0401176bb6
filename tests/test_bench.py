"""`make bench-smoke`: the benchmark harness, every scenario once on small data, so it cannot
rot between full `make bench` runs. It checks what the harness measured and wrote, not speed.
Not part of `make test`: it runs seven pipelines and the article's script one after another (16
minutes of one core on a slow day), so CI runs it beside the fault and Kubeflow targets (.ci/run)."""

import json
import os
import subprocess
import sys

import pytest

from bench import report
from bench.run import FULL, SMOKE, SMOKE_CANDIDATES
from shopbusy.pipeline import config
from shopbusy.results import metadata
from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.bench

SMOKE_TIMEOUT = 1750  # a safety net, under pytest-timeout's 1800 s (pytest.ini), not a speed check


def test_bench_smoke_measures_every_scenario_and_writes_the_tables(tmp_path):
    results_dir, doc, scratch = tmp_path / "results", tmp_path / "docs" / "benchmarks.md", tmp_path / "scratch"
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--results-dir", results_dir, "--doc", doc, "--scratch", scratch],
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [path] = results_dir.iterdir()
    results = json.loads(path.read_text())
    assert path.name.endswith(f"-{results['machine']['host']}.json")
    assert results["machine"]["cores"] == os.cpu_count()
    assert list(results["imports"]) == list(SMOKE.imports) and set(SMOKE.imports) < set(FULL.imports)
    assert all(timing["median"] > 0 for timing in results["imports"].values())

    [(name, dataset)] = results["datasets"].items()
    [fresh], [baseline] = dataset["shopbusy"], dataset["baseline"]
    assert 0.5 < dataset["bayes_accuracy"] < 1
    assert fresh["exit_code"] in (0, 3) and 0 <= fresh["test_accuracy"] <= 1
    assert fresh["peak_rss_mb"] > 200  # TensorFlow alone is more than that: the whole tree was sampled
    # What else ran meanwhile is recorded with every figure (tests/test_bench_load.py: how).
    assert 0 <= fresh["foreign_cpu_share"] <= 1 and isinstance(fresh["busy"], bool)
    assert set(results["load_at_start"]) == {"loadavg", "heavy_processes", "steal_share", "busy"}
    assert 0 <= fresh["steal_share"] <= 1
    for node in ("CsvExampleGen", "StatisticsGen", "Transform", "Trainer", "Evaluator"):
        assert fresh["components"][node]["state"] == "COMPLETE", node
        assert fresh["components"][node]["rows_per_second"] > 0, node
    # The unchanged re-run was answered without a run; the forced one reused the cache.
    assert 0 < fresh["rerun_unchanged"]["wall_seconds"] < fresh["wall_seconds"]
    assert fresh["rerun_unchanged"]["exit_code"] == fresh["exit_code"]
    workdir = config.Workdir(str(scratch / f"{name}-seed0"))
    assert len(metadata.run_ids(metadata.open_store(workdir.metadata_path))) == 3  # fresh, forced, forced with intervals
    for rerun in ("rerun_forced", "rerun_forced_intervals"):
        forced = fresh[rerun]["components"]
        assert forced["Transform"]["state"] == "CACHED" and forced["Trainer"]["state"] == "CACHED", rerun
    assert fresh["rerun_forced_intervals"]["components"]["Evaluator"]["state"] == "COMPLETE"
    # The forced re-run evaluates again against the model the fresh run pushed; with nothing
    # pushed its inputs are the fresh run's, and the Evaluator is a cache hit.
    pushed = fresh["exit_code"] == 0
    assert fresh["rerun_forced"]["components"]["Evaluator"]["state"] == ("COMPLETE" if pushed else "CACHED")
    [(_, without, _)] = report.interval_runs(results)
    assert without["components"]["Evaluator"]["state"] == "COMPLETE" and without is (fresh["rerun_forced"] if pushed else fresh)
    assert 0 <= baseline["test_accuracy"] <= 1 and baseline["epochs"] >= 1
    # Judged on its own eval rows against gradient-boosted trees and the Bayes accuracy.
    assert 0.5 < fresh["gbdt_accuracy"] <= 1 and 0.5 < fresh["bayes_accuracy_eval"] < 1
    assert 0 < fresh["eval_rows"] < 1000
    assert fresh["candidate"] in fresh["candidates"] and set(fresh["candidates"]) - {"ensemble"} == set(SMOKE_CANDIDATES)
    # The Evaluator's reference computed the Evaluator's own numbers, on the same rows.
    reference = fresh["evaluator_reference"]
    assert reference["rows"] == fresh["eval_rows"] and reference["seconds"] > 0
    from shopbusy.results import evaluation, runs

    history = runs.history(workdir.metadata_path)
    # Only the last re-run computed TFMA's intervals: the pair the Evaluator's cost is judged on.
    assert any(evaluation.slice_intervals(history[0].evaluation_uri).values())
    assert not any(evaluation.slice_intervals(history[1].evaluation_uri).values())
    record = history[-1]  # the fresh run, not the re-runs after it
    slices = evaluation.slice_metrics(record.evaluation_uri)
    assert reference["slices"] == len(slices)
    for name, value in reference["overall"].items():
        tfma_value = slices[()][(name, "", False)]
        assert abs(value - tfma_value) < (1e-3 if name == "auc" else 1e-9), (name, value, tfma_value)
    # Today's single network, in the same run, for the time budget.
    [today] = dataset["today"]
    assert today["components"]["Trainer"]["state"] == "COMPLETE" and today["exit_code"] in (0, 3)

    # The weekly scenario: both chains week by week, the second week reading the first's cache.
    [weekly] = results["weekly"].values()
    assert [w["week"] for w in weekly["with_cache"]] == [w["week"] for w in weekly["without_cache"]] == [1, 2]
    assert [w["cache_read"] for w in weekly["with_cache"]] == [False, True]
    assert not any(w["cache_read"] for w in weekly["without_cache"])
    assert weekly["with_cache"][1]["training_spans"] == [1, 2] and weekly["with_cache"][1]["transform_seconds"] > 0
    [analysis] = weekly["analysis"]
    assert analysis["week"] == 2 and analysis["cache_from"] and min(analysis["cold_k_spans"], analysis["cached_k_spans"], analysis["cold_new_span"]) > 0

    targets = {target["target"]: target for target in results["targets"]}
    assert any(t.startswith("fresh run <=") for t in targets) and any(t.startswith("cached re-run") for t in targets)
    assert any(t.startswith("shopbusy >= gradient-boosted trees") for t in targets)
    assert any("the article's network alone" in t for t in targets)
    assert any(t.startswith("Evaluator with TFMA's confidence intervals") for t in targets)
    assert any(t.startswith("from week 2 on, Transform's analysis with the cache") for t in targets)
    assert all(isinstance(t["met"], bool) for t in targets.values())

    page = doc.read_text()
    sections = (
        "## Targets", "## Imports and the CLI", "## Fresh run", "## Model quality by rule", "## The Evaluator against its real work",
        "## The Evaluator with confidence intervals", "## Weekly runs: Transform with and without its analyzer cache", "## How to read",
    )  # fmt: skip
    for section in sections:
        assert section in page
    for target in targets:
        assert target in page
    assert os.path.relpath(path, doc.parent) in page
