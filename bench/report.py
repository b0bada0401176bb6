"""The benchmark's verdict on the issue's targets, and docs/benchmarks.md."""

import collections
import dataclasses
import statistics
from typing import List, Optional

from bench.measure import BUSY_FOREIGN_SHARE, FOREIGN_PROCESS_PERCENT
from shopbusy.pipeline import nodes

# The targets of the benchmark issue (2 cores, measured side by side in one run).
MAX_FRESH_OVER_BASELINE = 3.0
MAX_CACHED_OVER_FRESH = 0.15
MAX_1M_SECONDS = 15 * 60
MAX_1M_PEAK_MB = 4 * 1024
MAX_1M_OVER_100K = 10.0
MAX_1M_OVER_FRESH = 3.0
MAX_EVALUATOR_OVER_TRANSFORM_1M = 1.0  # issue 28
MAX_EVALUATOR_PER_ROW_OVER_REFERENCE = 10.0  # issue 28: bench/evaluator_reference.py
MAX_INTERVALS_OVER_WITHOUT = 1.25  # issue 27: the Evaluator with TFMA's intervals against without
MAX_CACHED_ANALYSIS_OVER_ONE_SPAN = 1.0  # issue 28: from week K on, Transform's analysis with the cache
MAX_BAYES_GAP = 0.01  # on the bundled data, to the Bayes accuracy of the same eval rows
MAX_FRESH_OVER_TODAY = 1.3  # the Trainer's candidates against the article's network alone
MAX_FRESH_OVER_BEFORE_ISSUE_26 = 1.3  # issue 26: against the four candidates it was filed on


@dataclasses.dataclass(frozen=True)
class Comparison:
    """An earlier Trainer the fresh run's time is judged against, run in the same benchmark on
    the first dataset's seeds (bench/run.py) so that both meet the same machine."""

    key: str  # its runs in the results, beside "shopbusy"
    candidates: str  # its `shopbusy run --candidates`
    bound: float  # the fresh run's median at most this many times its median
    judged_as: str  # what the target calls it
    row: str  # what the page's row says of it


COMPARISONS = (
    Comparison("today", "dense", MAX_FRESH_OVER_TODAY, "the article's network alone", "the article's network alone, as before candidates"),
    # Issue 26 allows 1.3 x the Trainer's default when it was filed (the four candidates of
    # 2026-11-29), "measured in the same benchmark run".
    Comparison("before_issue_26", "dense,embedding,linear,crossed", MAX_FRESH_OVER_BEFORE_ISSUE_26,
               "the four candidates issue 26 was filed on", "the Trainer when issue 26 was filed"),
)  # fmt: skip
PIPELINE_NODES = [
    nodes.EXAMPLE_GEN, nodes.STATISTICS_GEN, nodes.EXAMPLE_VALIDATOR, nodes.TRANSFORM, nodes.TRAINER, nodes.EVALUATOR,
    nodes.PUSHER,
]  # fmt: skip


def _median(values: List[float]) -> float:
    return statistics.median(values)


def _walls(runs: List[dict]) -> List[float]:
    return [run["wall_seconds"] for run in runs]


def measurements(node) -> List[dict]:
    """Every measured command in the results (each carries its load figures)."""
    if isinstance(node, dict):
        found = [node] if "foreign_cpu_share" in node else []
        return found + [m for value in node.values() for m in measurements(value)]
    if isinstance(node, list):
        return [m for value in node for m in measurements(value)]
    return []


def targets(results: dict) -> List[dict]:
    """Every target the results can judge, met or missed, with the measured figure; a figure
    any of whose measurements ran beside other work says so."""
    verdicts = []

    def judge(target: str, value: float, bound: float, measured: str, *sources) -> None:
        busy = sum(m["busy"] for m in measurements(list(sources)))
        if busy:
            measured += f" (**busy machine** during {busy} of its measurements)"
        verdicts.append({"target": target, "value": value, "bound": bound, "met": value <= bound, "measured": measured, "busy": bool(busy)})

    first_name, first = next(iter(results["datasets"].items())) if results["datasets"] else (None, None)
    fresh = None
    if first:
        fresh = _median(_walls(first["shopbusy"]))
        baseline = _median(_walls(first["baseline"]))
        judge(
            f"fresh run <= {MAX_FRESH_OVER_BASELINE:g} x the baseline script ({first_name} data)",
            fresh / baseline,
            MAX_FRESH_OVER_BASELINE,
            f"{fresh:.0f} s / {baseline:.0f} s = {fresh / baseline:.2f} x (medians)",
            first["shopbusy"],
            first["baseline"],
        )
        cached = _median([run["rerun_unchanged"]["wall_seconds"] for run in first["shopbusy"]])
        judge(
            f"cached re-run <= {MAX_CACHED_OVER_FRESH:.0%} of the fresh run",
            cached / fresh,
            MAX_CACHED_OVER_FRESH,
            f"{cached:.1f} s / {fresh:.0f} s = {cached / fresh:.1%} (medians)",
            first["shopbusy"],
        )
    scale = results["scale"]
    # A quality-only run (--scenarios quality) was never meant to reach the million rows.
    if "1000000" not in scale and 1_000_000 in results["plan"]["scale_rows"] and "scale" in results.get("scenarios", ["scale"]):
        verdicts.append(
            {"target": "1M rows end to end <= 15 min", "value": None, "bound": MAX_1M_SECONDS, "met": False,
             "measured": "not measured: the benchmark stopped before the million-row run finished"}
        )  # fmt: skip
    if "1000000" in scale:
        million = scale["1000000"]
        judge("1M rows end to end <= 15 min", million["wall_seconds"], MAX_1M_SECONDS, f"{million['wall_seconds'] / 60:.1f} min", million)
        judge("1M rows peak memory <= 4 GiB", million["peak_rss_mb"], MAX_1M_PEAK_MB, f"{million['peak_rss_mb'] / 1024:.2f} GiB", million)
        if fresh:
            ratio = million["wall_seconds"] / fresh
            judge(
                f"time(1M rows) <= {MAX_1M_OVER_FRESH:g} x the fresh run ({first_name} data)",
                ratio,
                MAX_1M_OVER_FRESH,
                f"{million['wall_seconds']:.0f} s / {fresh:.0f} s = {ratio:.1f} x",
                million,
                first["shopbusy"],
            )
        seconds = {node: million["components"][node]["seconds"] for node in (nodes.EVALUATOR, nodes.TRANSFORM)}
        ratio = seconds[nodes.EVALUATOR] / seconds[nodes.TRANSFORM]
        judge(
            f"Evaluator <= {MAX_EVALUATOR_OVER_TRANSFORM_1M:g} x Transform at 1M rows",
            ratio,
            MAX_EVALUATOR_OVER_TRANSFORM_1M,
            f"{seconds['Evaluator']:.0f} s / {seconds['Transform']:.0f} s = {ratio:.1f} x",
            million,
        )
        if "100000" in scale:
            ratio = million["wall_seconds"] / scale["100000"]["wall_seconds"]
            judge("time(1M) / time(100k) <= 10", ratio, MAX_1M_OVER_100K, f"{ratio:.1f}", million, scale["100000"])
    evaluator_fit, reference_fit = evaluator_fits(results)
    if evaluator_fit and reference_fit:
        ratio = evaluator_fit[1] / reference_fit[1]
        judge(
            f"the Evaluator's cost per eval row <= {MAX_EVALUATOR_PER_ROW_OVER_REFERENCE:g} x its reference's (scale runs)",
            ratio,
            MAX_EVALUATOR_PER_ROW_OVER_REFERENCE,
            f"{evaluator_fit[1] * 1e6:.1f} µs / {reference_fit[1] * 1e6:.2f} µs = {ratio:.0f} x",
            *[run for run in scale.values() if "evaluator_reference" in run],
        )
    paired = interval_runs(results)
    failed = [(label, run) for label, *runs in paired for run in runs if run.get("failed")]
    if failed:
        label, run = failed[-1]
        verdicts.append(
            {"target": f"Evaluator with TFMA's confidence intervals <= {MAX_INTERVALS_OVER_WITHOUT:g} x without ({label})",
             "value": None, "bound": MAX_INTERVALS_OVER_WITHOUT, "met": False,
             "measured": f"not measured: a forced re-run failed (exit {run['exit_code']}, peak {run['peak_rss_mb']} MB)"}
        )  # fmt: skip
    elif paired:
        label, without, with_intervals = paired[-1]  # the largest data measured
        seconds = [run["components"][nodes.EVALUATOR]["seconds"] for run in (without, with_intervals)]
        judge(
            f"Evaluator with TFMA's confidence intervals <= {MAX_INTERVALS_OVER_WITHOUT:g} x without ({label})",
            seconds[1] / seconds[0],
            MAX_INTERVALS_OVER_WITHOUT,
            f"{seconds[1]:.0f} s / {seconds[0]:.0f} s = {seconds[1] / seconds[0]:.2f} x",
            without,
            with_intervals,
        )
    for rows_text, size in results.get("weekly", {}).items():
        if size["analysis"]:
            cached, one = _median([r["cached_k_spans"] for r in size["analysis"]]), _median([r["cold_new_span"] for r in size["analysis"]])
            judge(
                f"from week {size['analysis'][0]['week']} on, Transform's analysis with the cache <= "
                f"{MAX_CACHED_ANALYSIS_OVER_ONE_SPAN:g} x one span's ({int(rows_text):,} rows a week)",
                cached / one,
                MAX_CACHED_ANALYSIS_OVER_ONE_SPAN,
                f"{cached:.1f} s / {one:.1f} s = {cached / one:.2f} x (medians over the weeks)",
                size["with_cache"],
            )
    for comparison in COMPARISONS:
        if not (first and first.get(comparison.key)):
            continue
        earlier = _median(_walls(first[comparison.key]))
        judge(
            f"fresh run <= {comparison.bound:g} x {comparison.judged_as} (`--candidates {comparison.candidates}`, {first_name} data)",
            fresh / earlier,
            comparison.bound,
            f"{fresh:.0f} s / {earlier:.0f} s = {fresh / earlier:.2f} x (medians)",
            first["shopbusy"],
            first[comparison.key],
        )
    for name, dataset in results["datasets"].items():
        runs = [run for run in dataset["shopbusy"] if "gbdt_accuracy" in run]
        if not runs:
            continue
        behind = [run["gbdt_accuracy"] - run["test_accuracy"] for run in runs]
        worst = max(range(len(runs)), key=behind.__getitem__)
        judge(
            f"shopbusy >= gradient-boosted trees on every seed ({name} rule)",
            max(behind),
            0.0,
            f"worst seed {worst}: {runs[worst]['test_accuracy']:.4f} vs {runs[worst]['gbdt_accuracy']:.4f} "
            f"({-max(behind):+.4f}); {sum(b <= 0 for b in behind)} of {len(runs)} seeds at or above",
        )
    if first_name == "bundled" and all("bayes_accuracy_eval" in run for run in first["shopbusy"]):
        gaps = [run["bayes_accuracy_eval"] - run["test_accuracy"] for run in first["shopbusy"]]
        judge(
            f"every seed within {MAX_BAYES_GAP} of the Bayes accuracy of its eval rows (bundled data)",
            max(gaps),
            MAX_BAYES_GAP,
            f"worst gap {max(gaps):.4f} over {len(gaps)} seeds",
        )
    return verdicts


def _spread(values: List[float], digits: int) -> str:
    return f"{min(values):.{digits}f} / {_median(values):.{digits}f} / {max(values):.{digits}f}"


def _table(header: List[str], rows: List[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(results: dict, results_path: str, notes: str = "") -> str:
    """docs/benchmarks.md: the latest benchmark's tables, then `notes` (bench/notes.md,
    written by hand); the JSON holds every number."""
    machine = results["machine"]
    sections = [
        "# Benchmarks",
        "Written by `make bench` (`python -m bench.run`); do not edit by hand. Every number below "
        f"comes from [{results_path}]({results_path}).",
        f"- Machine: {machine['host']}, {machine['cpu']}, {machine['cores']} cores, {machine['memory_gb']} GB; "
        f"{machine['os']}; Python {machine['python']}; "
        + ", ".join(f"{name} {version}" for name, version in machine["packages"].items()),
        f"- Command: `{results['command']}`, from {results['started']} to {results['finished']}"
        + ("." if results["complete"] else " (stopped before the end: the tables hold what had finished)."),
        "- Times are wall-clock seconds of the whole command (imports included), as min / median / max "
        "over the runs; memory is the peak of the summed RSS of the command's process tree.",
        _load_line(results),
        "## Targets",
        _table(
            ["target", "measured", "met"],
            [[t["target"], t["measured"], "met" if t["met"] else "**missed**"] for t in results["targets"]],
        ),
        "## Imports and the CLI",
        _table(
            ["command", "seconds (min / median / max)", "runs"],
            [[f"`{name}`", f"{t['min']} / {t['median']} / {t['max']}", t["runs"]] for name, t in results["imports"].items()],
        ),
    ]

    if results["datasets"]:
        sections += _run_sections(results)
    if results["scale"]:
        sections += _scale_sections(results)
    sections += _evaluator_sections(results)  # the first dataset's fresh run and each scale run
    sections += _interval_sections(results)
    sections += _weekly_sections(results)
    return "\n\n".join(sections + ([notes.strip()] if notes else [])) + "\n"


def _scale_sections(results: dict) -> List[str]:
    """One run per generated size."""
    timed = [node for node in PIPELINE_NODES if node not in (nodes.PUSHER, nodes.EXAMPLE_VALIDATOR)]
    scale_rows = []
    for rows_text, run in results["scale"].items():
        components = run["components"]
        scale_rows.append(
            [f"{int(rows_text):,}", f"{run['wall_seconds']:.0f}", run["peak_rss_mb"], f"{run['test_accuracy']:.4f}"]
            + [
                f"{components[n]['seconds']:.0f} s, {components[n]['rows_per_second']:,}/s" if n in components else "-"
                for n in timed
            ]
        )
    sections = [
        "## Scale (one run per size, generated data, seed 1)",
        "Rows per second: the input's rows over the component's seconds.",
        _table(["rows", "wall seconds", "peak MB", "test accuracy", *timed], scale_rows),
    ]
    rows_text, largest = list(results["scale"].items())[-1]
    if largest.get("peak_processes"):
        sections.append(
            f"Where the {int(rows_text):,}-row run's memory was at its peak ({largest['peak_rss_mb']} MB summed), "
            "process by process:"
        )
        sections.append(_table(["RSS MB", "command line (cut)"], [[p["rss_mb"], f"`{p['command']}`"] for p in largest["peak_processes"]]))
    return sections


def evaluator_runs(results: dict) -> List[tuple]:
    """(label, run) for every run measured beside its Evaluator reference: the first
    dataset's first fresh run, then each scale size."""
    found = []
    if results["datasets"]:
        name, first = next(iter(results["datasets"].items()))
        if first["shopbusy"] and "evaluator_reference" in first["shopbusy"][0]:
            found.append((f"{name} data, fresh run", first["shopbusy"][0]))
    found += [(f"{int(rows):,} rows", run) for rows, run in results["scale"].items() if "evaluator_reference" in run]
    return found


def linear_cost(points: List[tuple]) -> Optional[tuple]:
    """Least-squares fixed cost and cost per row through (rows, seconds) points; None with
    fewer than two sizes."""
    if len({rows for rows, _ in points}) < 2:
        return None
    mean_rows = statistics.fmean(rows for rows, _ in points)
    mean_seconds = statistics.fmean(seconds for _, seconds in points)
    slope = sum((r - mean_rows) * (t - mean_seconds) for r, t in points) / sum((r - mean_rows) ** 2 for r, _ in points)
    return mean_seconds - slope * mean_rows, slope


def evaluator_fits(results: dict) -> tuple:
    """linear_cost() of the Evaluator and of its reference over the scale runs measured with it."""
    sized = [(run["evaluator_reference"]["rows"], run) for run in results["scale"].values() if "evaluator_reference" in run]
    return (
        linear_cost([(rows, run["components"][nodes.EVALUATOR]["seconds"]) for rows, run in sized]),
        linear_cost([(rows, run["evaluator_reference"]["seconds"]) for rows, run in sized]),
    )


def _evaluator_sections(results: dict) -> List[str]:
    measured = evaluator_runs(results)
    if not measured:
        return []
    rows = []
    for label, run in measured:
        reference = run["evaluator_reference"]
        evaluator = run["components"][nodes.EVALUATOR]["seconds"]
        rows.append(
            [label, f"{reference['rows']:,}", reference["slices"], f"{evaluator:.1f}", f"{reference['score_seconds']:.2f}",
             f"{reference['metrics_seconds']:.2f}", f"{evaluator / reference['seconds']:.0f} x"]
        )  # fmt: skip
    sections = [
        "## The Evaluator against its real work",
        "The reference (`bench/evaluator_reference.py`) does what the Evaluator computes, directly, on the "
        "same eval rows and model: scores every row through the model's `serving_default` signature in "
        "batches of 20,000 (parsing and the Transform layer included), then computes every slice's counts, "
        "rates and 1,000-bucket AUC with numpy. Its overall figures equal TFMA's (tests/test_bench.py). "
        "Model loading and reading the files are left out of both columns.",
        _table(["run", "eval rows", "slices", "Evaluator s", "reference: scoring s", "reference: slice metrics s", "Evaluator / reference"], rows),
    ]
    evaluator_fit, reference_fit = evaluator_fits(results)
    if evaluator_fit and reference_fit:
        sections.append(
            f"Fitted over the scale runs (least squares, seconds = fixed + rows x per row): the Evaluator "
            f"{evaluator_fit[0]:.1f} s + {evaluator_fit[1] * 1e6:.1f} µs per eval row; the reference "
            f"{reference_fit[0]:.2f} s + {reference_fit[1] * 1e6:.2f} µs per eval row; per row, the Evaluator "
            f"costs {evaluator_fit[1] / reference_fit[1]:.0f} x the reference."
        )
    return sections


def interval_runs(results: dict) -> List[tuple]:
    """(label, the run whose Evaluator had no intervals, the forced re-run with --intervals)
    for the first dataset's first fresh run and each scale size, smallest first. Without
    intervals is the forced re-run's Evaluator; when the fresh run pushed nothing, that was a
    cache hit (the same inputs, no baseline), and the fresh run's own Evaluator is the one
    that ran with the same inputs."""

    def pair(label: str, fresh: dict) -> tuple:
        forced = fresh["rerun_forced"]
        ran = forced if forced.get("failed") or forced["components"][nodes.EVALUATOR]["state"] != "CACHED" else fresh
        return label, ran, fresh["rerun_forced_intervals"]

    found = []
    if results["datasets"]:
        name, first = next(iter(results["datasets"].items()))
        if first["shopbusy"] and "rerun_forced_intervals" in first["shopbusy"][0]:
            found.append(pair(f"{name} data", first["shopbusy"][0]))
    found += [pair(f"{int(rows):,} rows", run) for rows, run in results["scale"].items() if "rerun_forced_intervals" in run]
    return found


def _interval_sections(results: dict) -> List[str]:
    paired = interval_runs(results)
    if not paired:
        return []
    def evaluator(run: dict) -> str:
        if run.get("failed"):
            return f"failed (exit {run['exit_code']}, peak {run['peak_rss_mb']} MB)"
        return f"{run['components'][nodes.EVALUATOR]['seconds']:.1f}"

    rows = []
    for label, without, with_intervals in paired:
        ratio = "-"
        if not (without.get("failed") or with_intervals.get("failed")):
            seconds = [run["components"][nodes.EVALUATOR]["seconds"] for run in (without, with_intervals)]
            ratio = f"{seconds[1] / seconds[0]:.2f} x"
        rows.append(
            [label, evaluator(without), evaluator(with_intervals), ratio,
             f"{without['wall_seconds']:.0f}", f"{with_intervals['wall_seconds']:.0f}", with_intervals["peak_rss_mb"]]
        )  # fmt: skip
    return [
        "## The Evaluator with confidence intervals",
        "`shopbusy run --force` and then `shopbusy run --force --intervals` after each fresh run: every "
        "upstream component is a cache hit, and both Evaluators score the same candidate against the same "
        "served model (or none, when the fresh run pushed nothing; its forced re-run's Evaluator is then a "
        "cache hit, and the fresh run's own is the one without intervals), so they differ only in TFMA's "
        "jackknife intervals (20 buckets). The threshold and calibration plots are computed in both (every "
        "run has them).",
        _table(["data", "Evaluator s, no intervals", "with intervals", "ratio", "run s, no intervals", "with intervals", "peak MB with intervals"], rows),
    ]


def _weekly_sections(results: dict) -> List[str]:
    """Transform per week with and without the analyzer cache, and the analysis alone."""
    weekly = results.get("weekly") or {}
    if not weekly:
        return []
    plan = results["plan"]
    rows = []
    for rows_text, size in weekly.items():
        first = plan["weekly_train_spans"]  # from the week the chains train on K spans
        steady = [(c, n) for c, n in zip(size["with_cache"], size["without_cache"]) if c["week"] >= first]
        analysis = size["analysis"]
        rows.append(
            [f"{int(rows_text):,}", f"{first}-{plan['weekly_weeks']}",
             f"{_median([c['transform_seconds'] for c, _ in steady]):.1f}", f"{_median([n['transform_seconds'] for _, n in steady]):.1f}",
             f"{_median([c['run_seconds'] for c, _ in steady]):.0f}", f"{_median([n['run_seconds'] for _, n in steady]):.0f}",
             f"{sum(c['cache_read'] for c, _ in steady)} of {len(steady)}"]
            + ([f"{_median([r[k] for r in analysis]):.1f}" for k in ("cold_k_spans", "cached_k_spans", "cold_new_span")] if analysis else ["-"] * 3)
        )  # fmt: skip
    return [
        "## Weekly runs: Transform with and without its analyzer cache",
        f"Generated weeks (seed 1) arrive one by one in two fresh workdirs; `shopbusy run --train-spans "
        f"{plan['weekly_train_spans']} --candidates linear` after each, as shipped (Transform reads the last accepted "
        "week's analyzer cache) and with `--no-analyzer-cache`. Transform's seconds are ML Metadata's; the analysis "
        "alone is TFX's Transform executor on the cached chain's inputs of each week, with no materialization and "
        "no statistics (`bench/weekly_transform.py`). Medians over the weeks shown.",
        _table(
            ["rows a week", "weeks", "Transform, with cache", "without", "run, with cache", "without", "cache read",
             "analysis of K spans, cold", "with last week's cache", "the new span alone"],
            rows,
        ),  # fmt: skip
    ]


def _load_line(results: dict) -> str:
    """What the machine was doing besides the benchmark: the load seen at the start, and how
    many measurements other processes shared the CPU with."""
    start = results.get("load_at_start")
    if start is None:
        return "- Load: not recorded (a benchmark from before the load check)."
    taken = measurements(results)
    busy = [m for m in taken if m["busy"]]
    line = (
        f"- Load: 1/5/15-minute load averages {' / '.join(str(x) for x in start['loadavg'])} at the start, "
        f"{len(start['heavy_processes'])} other processes above {FOREIGN_PROCESS_PERCENT:g} % of a core"
        + (" (started with --allow-busy)" if start["busy"] else "")
        + f"; other processes used at most {max((m['foreign_cpu_share'] for m in taken), default=0):.1%} "
        f"of the CPU during any measurement"
        + (  # recorded since 2026-12-03: the hypervisor's share of it
            f" (the hypervisor's steal time, CPU given to other guests of the host, at most "
            f"{max(m['steal_share'] for m in taken):.1%})"
            if taken and all("steal_share" in m for m in taken)
            else ""
        )
        + f"; {len(busy)} of {len(taken)} measurements were above {BUSY_FOREIGN_SHARE:.0%} and are marked busy."
    )
    return line


def _run_sections(results: dict) -> List[str]:
    """The tables of the pipeline runs, the baseline and the scale runs."""
    first_name, first = next(iter(results["datasets"].items()))
    shopbusy = first["shopbusy"]
    rows = [
        ["`shopbusy run`, fresh workdir", _spread(_walls(shopbusy), 1), max(r["peak_rss_mb"] for r in shopbusy), len(shopbusy)],
        [
            "`shopbusy run` again, nothing changed (up-to-date check)",
            _spread([r["rerun_unchanged"]["wall_seconds"] for r in shopbusy], 2),
            max(r["rerun_unchanged"]["peak_rss_mb"] for r in shopbusy),
            len(shopbusy),
        ],
    ]
    forced = [r["rerun_forced"] for r in shopbusy if "rerun_forced" in r]
    if forced:
        rows.append(["`shopbusy run --force` again (TFX's cache, baseline evaluation)", _spread(_walls(forced), 1), max(r["peak_rss_mb"] for r in forced), len(forced)])
    for comparison in COMPARISONS:
        if first.get(comparison.key):
            earlier = first[comparison.key]
            rows.append([f"`shopbusy run --candidates {comparison.candidates}` ({comparison.row})", _spread(_walls(earlier), 1), max(r["peak_rss_mb"] for r in earlier), len(earlier)])
    rows.append(["the article's script (`bench/baseline.py`)", _spread(_walls(first["baseline"]), 1), max(r["peak_rss_mb"] for r in first["baseline"]), len(first["baseline"])])
    trainer_rows = [
        [name, _spread([r["candidates"][name]["seconds"] for r in shopbusy], 1)]
        for name in (shopbusy[0].get("candidates") or {})
    ]
    sections = [
        f"## Fresh run, re-run and the article's script ({first_name} data: {first['data']})",
        _table(["command", "wall seconds (min / median / max)", "peak MB", "runs"], rows),
        "Per component of the fresh runs (seconds from ML Metadata, min / median / max):",
        _table(
            ["component", "seconds"],
            [
                [node, _spread([r["components"][node]["seconds"] for r in shopbusy], 1)]
                for node in PIPELINE_NODES
                if all(node in r["components"] for r in shopbusy)
            ],
        ),
    ]
    if trainer_rows:
        sections += [
            "Inside the Trainer, seconds per candidate model (restarts included; from history.json):",
            _table(["candidate", "seconds"], trainer_rows),
        ]

    quality_rows = []
    for name, dataset in results["datasets"].items():
        runs = dataset["shopbusy"]
        ours = [r["test_accuracy"] for r in runs]
        if not all("gbdt_accuracy" in r for r in runs):
            continue
        gbdt = [r["gbdt_accuracy"] for r in runs]
        bayes = [r["bayes_accuracy_eval"] for r in runs]
        chosen = collections.Counter(r["candidate"] for r in runs)
        quality_rows.append(
            [
                f"{name} (data seed {dataset['data_seed']})",
                _spread(bayes, 4),
                _spread(ours, 4),
                _spread(gbdt, 4),
                f"{min(o - g for o, g in zip(ours, gbdt)):+.4f}",
                f"{max(b - o for b, o in zip(bayes, ours)):.4f}",
                ", ".join(f"{candidate} x{count}" for candidate, count in chosen.most_common()),
            ]
        )
    baseline = first["baseline"]
    sections += [
        "## Model quality by rule",
        "Per busy rule (`shopbusy generate --rule`), one dataset of "
        f"{results['plan']['dataset_rows']:,} rows and training seeds 0..{results['plan']['seeds'] - 1}. "
        "Test accuracy on the eval split (40 % of rows, never used for training, early stopping or "
        "choosing the candidate); the gradient-boosted trees (scikit-learn's "
        "HistGradientBoostingClassifier, native categorical features, default settings) are fitted on "
        "the same run's train and validation rows and scored on the same eval rows; Bayes is the expected "
        "accuracy of the best possible classifier on those eval rows. Spreads are min / median / max "
        "over seeds; 'worst vs trees' is the lowest of shopbusy minus trees, seed by seed.",
        _table(
            ["rule", "Bayes (eval rows)", "shopbusy", "trees", "worst vs trees", "worst gap to Bayes", "candidate chosen"],
            quality_rows,
        ),
    ]
    if baseline:
        theirs = [r["test_accuracy"] for r in baseline]
        sections.append(
            f"The article's script on the {first_name} data (its own 40 % test split, the same seeds): "
            f"{_spread(theirs, 4)}."
        )

    return sections
