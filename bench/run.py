"""`make bench`: shopbusy against the article's script, its cached path, its quality over
seeds, its scale, and its weekly runs; results to bench/results/<date>-<host>.json and
docs/benchmarks.md.

    python -m bench.run            # the full benchmark (about two and a half hours on 2 cores)
    python -m bench.run --smoke    # every scenario on small data (make bench-smoke, in CI)
    python -m bench.run --scenarios scale   # only the runs per size (about 35 minutes)
    python -m bench.run --scenarios quality --seeds 1   # every rule once (about 15 minutes)
    python -m bench.run --scenarios weekly  # 8 weeks with and without the analyzer cache (about 45 minutes)

Every scenario runs the real commands (`shopbusy run`, `python -m bench.baseline`) as
child processes, one at a time, and measures wall time and the peak memory of the whole
process tree; per-component times are read back from ML Metadata, accuracy from TFMA.
"""

import argparse
import dataclasses
import datetime
import json
import os
import statistics
import sys
import tempfile
from typing import Callable, Dict, List, Tuple

from bench import report
from bench.measure import machine, machine_load, measure
from shopbusy.cli import common
from shopbusy.data import generator
from shopbusy.pipeline import config, nodes

BIN = os.path.dirname(sys.executable)
SHOPBUSY = os.path.join(BIN, "shopbusy")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(REPO_ROOT, "bench", "results")
DOC = os.path.join(REPO_ROOT, "docs", "benchmarks.md")
NOTES = os.path.join(REPO_ROOT, "bench", "notes.md")  # hand-written, appended to DOC


# The import timings, each name with its command: TFX's public API against the part of it the
# pipeline loads (same objects), and the CLI.
IMPORT_COMMANDS = {
    "from tfx import v1": [sys.executable, "-c", "from tfx import v1"],
    "import shopbusy.pipeline.tfx_api": [sys.executable, "-c", "import shopbusy.pipeline.tfx_api"],
    "shopbusy --help": [SHOPBUSY, "--help"],
}
IMPORTS = tuple(IMPORT_COMMANDS)


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one benchmark run measures."""

    repeats: int = 3  # of the import timings
    imports: Tuple[str, ...] = IMPORTS  # which of them
    seeds: int = 5  # training seeds per dataset
    # Busy rule (generator.RULES) -> data seed. The first is also run with the article's
    # script and with the earlier Trainers (`comparisons`), and re-run; "bundled" at the
    # default size and seed is the bundled CSV itself.
    datasets: Dict[str, int] = dataclasses.field(
        default_factory=lambda: {
            "bundled": 42, "type-hour": 7, "distance-cutoff": 7, "odd-types": 7, "noisy": 7,
            "time-distance": 7, "location-time": 7,
        }
    )
    dataset_rows: int = generator.DEFAULT_ROWS
    scale_rows: List[int] = dataclasses.field(default_factory=lambda: [10_000, 100_000, 1_000_000])
    run_args: List[str] = dataclasses.field(default_factory=list)  # extra `shopbusy run` flags
    # Weekly runs with and without Transform's analyzer cache (issue 28): rows a week, weeks,
    # and the spans each week trains on (bench.weekly_transform).
    weekly_rows: List[int] = dataclasses.field(default_factory=lambda: [5_600, 100_000])
    weekly_weeks: int = 8
    weekly_train_spans: int = 4
    # The earlier Trainers also timed on the first dataset (report.COMPARISONS' keys): the
    # fresh run's time targets are multiples of theirs.
    comparisons: Tuple[str, ...] = tuple(comparison.key for comparison in report.COMPARISONS)


FULL = Plan()
# The smoke's candidates: a network and the trees, the cheapest two of different kinds, so
# the choice, the ensemble and the trees' refit all run (every candidate's own model is
# tested in tests/test_model.py and tests/test_trees.py, the six together by the e2e run).
SMOKE_CANDIDATES = ("linear", "trees")
# Every scenario once, on small data and a short schedule: proves the harness, not the product.
SMOKE = Plan(
    repeats=1,
    # One timing proves the harness; the two TFX imports cost 90 s on a slow 2-core machine.
    imports=("shopbusy --help",),
    seeds=1,
    datasets={"odd-types": 3},
    dataset_rows=1_000,
    scale_rows=[],
    run_args=["--epochs", "3", "--restarts", "2", "--candidates", ",".join(SMOKE_CANDIDATES)],
    weekly_rows=[3_000],  # as tests/test_continuous_training.py: weeks this size stay under the drift thresholds
    weekly_weeks=2,
    weekly_train_spans=2,
    # The article's network alone proves the loop; the four candidates before issue 26 would
    # be a minute more of it (tests/test_bench_report.py judges their target).
    comparisons=("today",),
)
SCENARIOS = ("quality", "scale", "weekly")


def _python(*args) -> List[str]:
    return [sys.executable, *args]


def import_times(plan: Plan) -> dict:
    """The plan's import timings (IMPORT_COMMANDS)."""
    return {
        name: _median([measure(IMPORT_COMMANDS[name]).wall_seconds for _ in range(plan.repeats)])
        for name in plan.imports
    }


def _median(values: List[float]) -> dict:
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
        "runs": len(values),
    }


def _read_run(workdir: str, rows: int) -> dict:
    """The newest run of `workdir` as ML Metadata and TFMA recorded it."""
    from shopbusy.results import evaluation, runs

    record = runs.history(config.Workdir(workdir).metadata_path)[0]
    overall = evaluation.slice_metrics(record.evaluation_uri)[()]
    candidate = evaluation.candidate_name(overall)
    return {
        "run_id": record.run_id,
        "verdict": record.verdict,
        "test_accuracy": overall[(evaluation.ACCURACY, candidate, False)],
        "components": {
            node: {
                "state": execution.state,
                "seconds": round(execution.seconds, 2),
                "rows_per_second": round(rows / execution.seconds) if execution.seconds > 0 else None,
            }
            for node, execution in record.executions.items()
        },
    }


class RunFailed(RuntimeError):
    """A `shopbusy run` that neither pushed nor stopped at a gate; `failure` is what was
    measured of it, for the results."""

    def __init__(self, measured):
        super().__init__(f"shopbusy run failed ({measured.returncode}):\n{measured.stdout[-3000:]}")
        self.failure = {**measured.summary(), "exit_code": measured.returncode, "failed": True, "output_tail": measured.stdout[-1500:]}


def shopbusy_run(data: str, workdir: str, rows: int, *args: str) -> dict:
    """One `shopbusy run`, measured, with what it recorded."""
    measured = measure([SHOPBUSY, "run", "--data", data, "--workdir", workdir, *args])
    if measured.returncode not in (common.EXIT_PUSHED, common.EXIT_NOT_BLESSED):
        raise RunFailed(measured)
    return {**measured.summary(), "exit_code": measured.returncode, **_read_run(workdir, rows)}


def evaluator_reference(workdir: str) -> dict:
    """bench.evaluator_reference on the workdir's newest evaluated run. In this process, not
    a child: it times its own steps, and the harness has TensorFlow loaded already (for the
    trees' comparison), which a child would spend its first 15-40 s importing again."""
    from bench import evaluator_reference as reference

    return reference.reference(*reference.newest_evaluated(workdir))


def forced_reruns(data: str, workdir: str, rows: int, *args: str) -> dict:
    """The fresh run again with --force, then with --force --intervals: TFX's all-cached path,
    and the Evaluator's cost with TFMA's confidence intervals (issue 27). Every upstream
    component is a cache hit in both, and both evaluate the same candidate against the same
    served model, so their Evaluators differ only in the intervals (report.interval_runs:
    which Evaluator ran without them when the fresh run pushed nothing). A re-run that fails
    is recorded as failed (-9: killed; the 1M `--force --intervals` one, by the kernel's OOM
    killer, on 2026-12-01), and the benchmark goes on."""
    reruns = {}
    for key, flags in (("rerun_forced", ["--force"]), ("rerun_forced_intervals", ["--force", "--intervals"])):
        try:
            reruns[key] = shopbusy_run(data, workdir, rows, *args, *flags)
        except RunFailed as failed:
            reruns[key] = failed.failure
    return reruns


def baseline_run(data: str, seed: int) -> dict:
    measured = measure(_python("-m", "bench.baseline", "--data", data, "--seed", str(seed)))
    if measured.returncode != 0:
        raise RuntimeError(f"bench.baseline failed:\n{measured.stdout[-3000:]}")
    result = json.loads(measured.stdout.strip().splitlines()[-1])
    return {**measured.summary(), "test_accuracy": result["test_accuracy"], "epochs": result["epochs"]}


def _dataset(name: str, seed: int, rows: int, scratch: str) -> tuple:
    """The CSV of a benchmark dataset (`name` is its busy rule) and the generated dataset."""
    dataset = generator.generate(rows, seed, world=generator.World(rule=name))
    if (name, seed, rows) == (generator.DEFAULT_RULE, generator.DEFAULT_SEED, generator.DEFAULT_ROWS):
        return config.DEFAULT_DATA, dataset
    path = os.path.join(scratch, f"{name}-{rows}-seed{seed}.csv")
    generator.write_csv(dataset, path)
    return path, dataset


def _split_columns(examples_uri: str, split: str) -> dict:
    """Column -> int array of the rows ExampleGen put in `split`."""
    import glob

    import numpy as np
    import tensorflow as tf

    from shopbusy.components.modules.features import CSV_COLUMNS

    files = glob.glob(os.path.join(examples_uri, f"Split-{split}", "*"))
    spec = {column: tf.io.FixedLenFeature([1], tf.int64) for column in CSV_COLUMNS}
    parsed = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(100_000).map(lambda r: tf.io.parse_example(r, spec))
    batches = list(parsed.as_numpy_iterator())
    return {column: np.concatenate([batch[column][:, 0] for batch in batches]) for column in CSV_COLUMNS}


def against_gbdt_and_bayes(workdir: str, dataset: generator.Dataset, seed: int) -> dict:
    """On the eval rows of the run in `workdir`: scikit-learn's gradient-boosted trees
    (HistGradientBoostingClassifier, native categorical features, default settings) fitted
    on the rows shopbusy learned from (its train and validation splits), and the Bayes
    accuracy of those eval rows (the generator's probabilities)."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier

    from shopbusy.components.modules import features
    from shopbusy.results import runs

    record = runs.history(config.Workdir(workdir).metadata_path)[0]
    uri = record.output_uri(nodes.EXAMPLE_GEN, "examples")
    splits = {split: _split_columns(uri, split) for split in (config.TRAIN_SPLIT, config.VALID_SPLIT, config.EVAL_SPLIT)}
    columns = features.CATEGORICAL_FEATURE_KEYS + list(features.FIXED_DOMAIN_FEATURES) + features.NUMERIC_FEATURE_KEYS

    def matrix(*names):
        return np.concatenate([np.column_stack([splits[n][c] for c in columns]) for n in names])

    def labels(*names):
        return np.concatenate([splits[n][features.LABEL_KEY] for n in names])

    categorical = [column not in features.NUMERIC_FEATURE_KEYS for column in columns]
    gbdt = HistGradientBoostingClassifier(categorical_features=categorical, random_state=seed)
    gbdt.fit(matrix(config.TRAIN_SPLIT, config.VALID_SPLIT), labels(config.TRAIN_SPLIT, config.VALID_SPLIT))
    eval_rows = splits[config.EVAL_SPLIT]
    p = generator.busy_probability(eval_rows, dataset.threshold, dataset.world)
    return {
        "eval_rows": len(p),
        "gbdt_accuracy": float(gbdt.score(matrix(config.EVAL_SPLIT), labels(config.EVAL_SPLIT))),
        "bayes_accuracy_eval": float(np.mean(np.maximum(p, 1 - p))),
        "candidate": record.chosen_candidate,
        "candidates": {c["name"]: {"val_loss": c["val_loss"], "val_accuracy": c["val_accuracy"], "seconds": c["seconds"]} for c in record.candidates},
    }


def runs_and_quality(plan: Plan, scratch: str, datasets: dict, save: Callable[[], None]) -> None:
    """Per dataset: `seeds` fresh runs (each into a new workdir), each judged against the
    gradient-boosted trees and the Bayes accuracy of its eval rows. On the first dataset
    also the article's script and the plan's earlier Trainers (report.COMPARISONS) with the same seeds,
    the re-run with nothing changed (the up-to-date check) and the same re-run with --force
    (TFX's all-cached path) and with --intervals. Adds each finished dataset to `datasets`
    and saves."""
    for index, (name, data_seed) in enumerate(plan.datasets.items()):
        data, dataset = _dataset(name, data_seed, plan.dataset_rows, scratch)
        entry = {
            "data": data,
            "data_seed": data_seed,
            "bayes_accuracy": dataset.bayes_accuracy,
            "shopbusy": [],
            "baseline": [],
            **{comparison.key: [] for comparison in report.COMPARISONS},
        }
        for seed in range(plan.seeds):
            workdir = os.path.join(scratch, f"{name}-seed{seed}")
            args = ["--seed", str(seed), *plan.run_args]
            fresh = shopbusy_run(data, workdir, plan.dataset_rows, *args)
            fresh.update(against_gbdt_and_bayes(workdir, dataset, seed))
            if index == 0:
                rerun = measure([SHOPBUSY, "run", "--data", data, "--workdir", workdir, *args])
                fresh["rerun_unchanged"] = {**rerun.summary(), "exit_code": rerun.returncode}
                if seed == 0:
                    fresh["evaluator_reference"] = evaluator_reference(workdir)
                    fresh.update(forced_reruns(data, workdir, plan.dataset_rows, *args))
                for comparison in report.COMPARISONS:
                    if comparison.key in plan.comparisons:
                        earlier = os.path.join(scratch, f"{name}-seed{seed}-{comparison.key}")
                        entry[comparison.key].append(
                            shopbusy_run(data, earlier, plan.dataset_rows, *args, "--candidates", comparison.candidates)
                        )
                entry["baseline"].append(baseline_run(data, seed))
            entry["shopbusy"].append(fresh)
        datasets[name] = entry
        save()


def scale(plan: Plan, scratch: str, sizes: dict, save: Callable[[], None]) -> None:
    """One end-to-end run on each generated size, its Evaluator's reference, and the forced
    re-runs without and with intervals; added to `sizes` and saved as each size ends."""
    for rows in plan.scale_rows:
        data = os.path.join(scratch, f"scale-{rows}", "shops.csv")
        os.makedirs(os.path.dirname(data))
        generator.write_csv(generator.generate(rows, seed=1), data)
        workdir = os.path.join(scratch, f"scale-{rows}-workdir")
        sizes[str(rows)] = shopbusy_run(data, workdir, rows, *plan.run_args)
        sizes[str(rows)]["evaluator_reference"] = evaluator_reference(workdir)
        save()  # before the re-runs: a re-run that takes the machine down leaves these
        sizes[str(rows)].update(forced_reruns(data, workdir, rows, *plan.run_args))
        save()


def weekly(plan: Plan, scratch: str, sizes: dict, save: Callable[[], None]) -> None:
    """Generated weeks arriving one by one, `shopbusy run --train-spans K` after each, with and
    without Transform's analyzer cache, then the analysis alone (bench.weekly_transform); each
    size added to `sizes` and saved as it ends."""
    from bench import weekly_transform

    for rows in plan.weekly_rows:
        folder = os.path.join(scratch, f"weekly-{rows}")
        os.makedirs(folder)
        sizes[str(rows)] = weekly_transform.size(rows, plan.weekly_weeks, plan.weekly_train_spans, seed=1, scratch=folder)
        save()


def _writer(results: dict, results_dir: str, doc: str, suffix: str = "") -> Callable[[], None]:
    """Writes the results so far: a long benchmark that is stopped still leaves its numbers."""
    path = os.path.join(results_dir, f"{results['started'][:10]}-{results['machine']['host']}{suffix}.json")
    with open(NOTES) as f:
        notes = f.read()

    def save() -> None:
        results["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
        results["targets"] = report.targets(results)
        os.makedirs(results_dir, exist_ok=True)
        with open(path, "w") as f:
            json.dump(results, f, indent=2)
        os.makedirs(os.path.dirname(os.path.abspath(doc)), exist_ok=True)
        with open(doc, "w") as f:
            f.write(report.markdown(results, os.path.relpath(path, os.path.dirname(os.path.abspath(doc))), notes))

    save.path = path
    return save


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="shopbusy's benchmark")
    parser.add_argument("--smoke", action="store_true", help="every scenario once on small data")
    parser.add_argument("--results-dir", default=RESULTS_DIR)
    parser.add_argument("--doc", default=DOC, help="the Markdown page to write the tables to")
    parser.add_argument("--scratch", help="folder for datasets and workdirs (default: a temporary one)")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help="which to run, comma-separated: quality (the datasets, their seeds and re-runs), scale (one run per "
        "size), weekly (weeks with and without Transform's analyzer cache)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        help=f"training seeds per dataset (default {FULL.seeds}); fewer write beside the full results, as --scenarios does",
    )
    parser.add_argument(
        "--datasets",
        help=f"which busy rules the quality scenario runs, comma-separated (default all: {', '.join(FULL.datasets)}); "
        "the first also gets the article's script and the earlier Trainers; fewer write beside the full results",
    )
    parser.add_argument(
        "--allow-busy", action="store_true", help="run on a busy machine anyway (its figures are marked busy)"
    )
    args = parser.parse_args(argv)
    plan = SMOKE if args.smoke else FULL
    if args.seeds:
        plan = dataclasses.replace(plan, seeds=args.seeds)
    if args.datasets:
        # e.g. the bundled rule alone: issue 26's time target in a third of the full run's time.
        names = args.datasets.split(",")
        unknown = [name for name in names if name not in plan.datasets]
        if unknown:
            parser.error(f"unknown datasets {', '.join(unknown)}: choose from {', '.join(plan.datasets)}")
        plan = dataclasses.replace(plan, datasets={name: plan.datasets[name] for name in names})
    load = machine_load()
    # The smoke run proves the harness (make bench-smoke, in CI beside other tests), where its
    # figures mean nothing anyway.
    if load["busy"] and not (args.allow_busy or args.smoke):
        print(
            f"the machine is busy (load averages {load['loadavg']}, other processes: "
            + (", ".join(f"{p['pid']} at {p['cpu_percent']} % ({p['command'][:60]})" for p in load["heavy_processes"]) or "none")
            + f", the hypervisor's steal time {load['steal_share']:.0%}"
            + "): its figures would not mean anything. Wait for a quiet machine, or pass --allow-busy.",
            file=sys.stderr,
        )
        return 1

    results = {
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.run", *(argv if argv is not None else sys.argv[1:])]),
        "plan": dataclasses.asdict(plan),
        "machine": machine(),
        "load_at_start": load,
        "complete": False,
        "scenarios": args.scenarios.split(","),
        "datasets": {},
        "scale": {},
        "weekly": {},
    }
    scenarios = args.scenarios.split(",")
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {', '.join(sorted(unknown))}: choose from {', '.join(SCENARIOS)}")
    # A partial benchmark writes beside the full one's results and page, never over them.
    suffix = "" if set(scenarios) == set(SCENARIOS) else "-" + "-".join(scenarios)
    if plan.seeds != FULL.seeds and not args.smoke:
        suffix += f"-seeds{plan.seeds}"
    if args.datasets and not args.smoke:
        suffix += "-" + "-".join(plan.datasets)
    doc = args.doc if args.doc != DOC or not suffix else DOC.replace(".md", f"{suffix}.md")
    save = _writer(results, args.results_dir, doc, suffix)
    with tempfile.TemporaryDirectory(prefix="shopbusy-bench-") as temporary:
        scratch = args.scratch or temporary
        os.makedirs(scratch, exist_ok=True)
        results["imports"] = import_times(plan)
        if "quality" in scenarios:
            runs_and_quality(plan, scratch, results["datasets"], save)
        if "scale" in scenarios:
            scale(plan, scratch, results["scale"], save)
        if "weekly" in scenarios:
            weekly(plan, scratch, results["weekly"], save)
    results["complete"] = True
    save()
    print(f"results: {save.path}\ntables: {doc}")
    for target in results["targets"]:
        print(f"  {'met   ' if target['met'] else 'MISSED'} {target['target']}: {target['measured']}")
    busy = [m for m in report.measurements(results) if m["busy"]]
    if busy:
        print(f"  {len(busy)} measurements shared the machine with other work: see 'Load' in {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
