"""Whether the report's 95 % intervals are honest: how often each shop type's interval on the
eval split's accuracy covers the model's accuracy on an independent sample of the same shops.

    python -m bench.interval_coverage [--seeds 5] [--rules bundled,noisy] [--weeks 18] [--out FILE]

For each rule and seed: week 1 of generated data (the bundled data's size) is trained on and
evaluated by a fresh `shopbusy run --intervals` (TFMA's jackknife, pipeline/eval_config.py);
then the model it trained, pushed or not, scores weeks 2..1+W of the same shops (new draws of
every column and label, generator.generate_weeks), about 5,000 rows per shop type at W = 18,
whose own 95 % noise (about +-0.012) is a sixth of an interval's width. A shop type counts as
covered when its interval holds that accuracy. Honest intervals cover about 95 % of the time;
coverage well below means the report would flag noise as weakness. Prints one JSON line per
run and the table for docs/benchmarks.md; writes the results to --out.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from shopbusy.components.modules.features import CSV_COLUMNS, LABEL_KEY, SERVING_OUTPUT_KEY
from shopbusy.data import generator
from shopbusy.pipeline import config
from shopbusy.results import evaluation, runs

BIN = os.path.dirname(sys.executable)
SHOP_TYPE = "shop_type"
BATCH = 20_000


def _scores(model_dir: str, columns: dict) -> np.ndarray:
    """The exported model's busy probabilities through its serving signature, as `predict` scores."""
    import tensorflow as tf

    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    features = [name for name in CSV_COLUMNS if name != LABEL_KEY]
    rows = len(columns[LABEL_KEY])
    scores = []
    for start in range(0, rows, BATCH):
        examples = [
            tf.train.Example(
                features=tf.train.Features(
                    feature={n: tf.train.Feature(int64_list=tf.train.Int64List(value=[int(columns[n][i])])) for n in features}
                )
            ).SerializeToString()
            for i in range(start, min(rows, start + BATCH))
        ]
        output = serve(examples=tf.constant(examples))
        scores.append(output[SERVING_OUTPUT_KEY].numpy()[:, 0])
    return np.concatenate(scores)


def one_run(rule: str, seed: int, weeks: int, scratch: str) -> dict:
    datasets = generator.generate_weeks(weeks=1 + weeks, seed=seed, rule=rule)
    data = os.path.join(scratch, f"{rule}-{seed}.csv")
    generator.write_csv(datasets[0], data)
    workdir = os.path.join(scratch, f"{rule}-{seed}")
    result = subprocess.run(
        [os.path.join(BIN, "shopbusy"), "run", "--data", data, "--workdir", workdir, "--intervals", "--seed", str(seed)],
        capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode not in (0, 3):
        raise RuntimeError(f"shopbusy run failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    record = runs.latest(config.Workdir(workdir).metadata_path)
    slices = evaluation.slice_metrics(record.evaluation_uri)
    intervals = evaluation.slice_intervals(record.evaluation_uri)
    candidate = evaluation.candidate_name(slices[()])
    metric = (evaluation.ACCURACY, candidate, False)

    from tfx.utils import path_utils

    independent = {name: np.concatenate([d.columns[name] for d in datasets[1:]]) for name in CSV_COLUMNS}
    predicted = _scores(path_utils.serving_model_dir(record.model_uri), independent) > config.DECISION_THRESHOLD
    correct = predicted == (independent[LABEL_KEY] == 1)
    types = []
    for shop_type in sorted(set(independent[SHOP_TYPE].tolist())):
        key = ((SHOP_TYPE, shop_type),)
        interval = intervals.get(key, {}).get(metric)
        rows = independent[SHOP_TYPE] == shop_type
        truth = float(correct[rows].mean())
        types.append(
            {
                "shop_type": shop_type,
                "eval_rows": slices.get(key, {}).get(("example_count", candidate, False)),
                "eval_accuracy": slices.get(key, {}).get(metric),
                "interval": list(interval) if interval else None,
                "independent_rows": int(rows.sum()),
                "independent_accuracy": truth,
                "covered": bool(interval and interval[0] <= truth <= interval[1]) if interval else None,
            }
        )
    return {"rule": rule, "seed": seed, "candidate": record.chosen_candidate, "shop_types": types}


def table(results: list) -> str:
    """Coverage per rule: shop types with an interval, covered, share, mean width."""
    lines = [
        "| rule | seeds | shop-type intervals | covered | coverage | mean width | missed by (median) |",
        "|---|---|---|---|---|---|---|",
    ]
    for rule in dict.fromkeys(r["rule"] for r in results):
        found = [t for r in results if r["rule"] == rule for t in r["shop_types"] if t["interval"]]
        covered = [t for t in found if t["covered"]]
        widths = [t["interval"][1] - t["interval"][0] for t in found]
        misses = [
            min(abs(t["independent_accuracy"] - t["interval"][0]), abs(t["independent_accuracy"] - t["interval"][1]))
            for t in found
            if not t["covered"]
        ]
        seeds = len([r for r in results if r["rule"] == rule])
        lines.append(
            f"| {rule} | {seeds} | {len(found)} | {len(covered)} | {len(covered) / len(found):.1%} | "
            f"{np.mean(widths):.3f} | {np.median(misses) if misses else 0:.3f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--rules", default="bundled,noisy")
    parser.add_argument("--weeks", type=int, default=18, help="independent weeks of the same shops")
    parser.add_argument("--out", help="results JSON (default: bench/results/interval-coverage.json)")
    args = parser.parse_args(argv)
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "interval-coverage.json")
    results = []
    with tempfile.TemporaryDirectory(prefix="shopbusy-coverage-") as scratch:
        for rule in args.rules.split(","):
            for seed in range(1, args.seeds + 1):
                results.append(one_run(rule, seed, args.weeks, scratch))
                print(json.dumps(results[-1]), flush=True)
    with open(out, "w") as f:
        json.dump({"command": " ".join(["python -m bench.interval_coverage", *(argv or sys.argv[1:])]), "runs": results}, f, indent=1)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
