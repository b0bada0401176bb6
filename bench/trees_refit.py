"""Measures how the trees learn from train + valid, outside TFX.

For each generator rule and five draws: 5,600 rows split at random 5 / 1 / 4 (the
pipeline's train / valid / eval buckets, config.SPLIT_BUCKETS), the trees fitted as the
Trainer fits them on large data (trees.fit: up to 500 iterations, the number with the
lowest validation loss kept), then refitted with that number on train + valid (trees.refit,
model.refit); and cross-fitted on train + valid as the Trainer fits them on small data
(trees.cross_fit: five folds, two shapes, the fold models averaged). All scored on eval,
beside the benchmark's reference (scikit-learn's defaults on train + valid, bench/run.py).
Raw integer columns stand in for Transform's outputs: trees split on order, which
z-scoring keeps, and on categories, which the vocabulary renames.

    .venv/bin/python -m bench.trees_refit > bench/results/trees-refit.txt
"""

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from shopbusy.components.modules import features, trees
from shopbusy.data import generator
from shopbusy.pipeline import config

ROWS = 5600
DRAWS = 5
COLUMNS = features.CATEGORICAL_FEATURE_KEYS + list(features.FIXED_DOMAIN_FEATURES) + features.NUMERIC_FEATURE_KEYS


def _splits(draw: int, num_rows: int) -> dict:
    buckets = np.random.default_rng(draw).integers(0, sum(config.SPLIT_BUCKETS.values()), num_rows)
    masks, start = {}, 0
    for split, size in config.SPLIT_BUCKETS.items():
        masks[split] = (buckets >= start) & (buckets < start + size)
        start += size
    return masks


def measure(rule: str, draw: int) -> dict:
    data = generator.generate(ROWS, seed=100 + draw, world=generator.World(rule=rule))
    raw = np.column_stack([data.columns[column] for column in COLUMNS])  # the reference's columns
    x = raw.astype(np.float64)
    y = data.columns[features.LABEL_KEY]
    split = _splits(draw, len(y))
    train, valid, evaluation = split[config.TRAIN_SPLIT], split[config.VALID_SPLIT], split[config.EVAL_SPLIT]
    # Every column but the numeric ones is a category, as the Trainer's native categories.
    sizes = {column: int(x[:, i].max()) + 1 for i, column in enumerate(COLUMNS) if column not in features.NUMERIC_FEATURE_KEYS}
    order = trees.columns({features.transformed_name(c): s for c, s in sizes.items()})
    x = x[:, [COLUMNS.index(name[: -len("_xf")]) for name in order]]
    category_sizes = {features.transformed_name(c): s for c, s in sizes.items()}

    def accuracy(classifier):
        return float(np.mean(classifier.predict(x[evaluation]) == y[evaluation]))

    fitted = trees.fit(x[train], y[train], x[valid], y[valid], category_sizes, draw)
    chosen, iterations = fitted.classifiers[0], fitted.iterations
    chosen_accuracy = float(np.mean(list(chosen.staged_predict(x[evaluation]))[iterations - 1] == y[evaluation]))
    both = train | valid
    refitted = trees.refit(x[both], y[both], category_sizes, draw, fitted).classifiers[0]
    crossed = trees.cross_fit(x[both], y[both], category_sizes, draw)
    bag = np.mean([list(c.staged_predict_proba(x[evaluation]))[crossed.iterations - 1][:, 1] for c in crossed.classifiers], axis=0)
    reference = HistGradientBoostingClassifier(categorical_features=[c in sizes for c in COLUMNS], random_state=draw)
    reference.fit(raw[both], y[both])
    reference_accuracy = float(np.mean(reference.predict(raw[evaluation]) == y[evaluation]))
    return {
        "train": chosen_accuracy,
        "refit": accuracy(refitted),
        "cross_fit": float(np.mean((bag > 0.5) == y[evaluation])),
        "reference": reference_accuracy,
        "iterations": iterations,
        "leaves": crossed.leaves,
    }


def main() -> None:
    print(f"{ROWS} rows a draw, {DRAWS} draws a rule; eval accuracy, mean over draws (and the cross-fit against the reference, min .. max)")
    print("| rule | trees on train | refitted on train + valid | cross-fitted on train + valid | cross-fitted - reference (min .. max) | draws at or above | benchmark reference | leaves chosen |")
    print("|---|---|---|---|---|---|---|---|")
    for rule in generator.RULES:
        results = [measure(rule, draw) for draw in range(DRAWS)]
        mean = {key: np.mean([r[key] for r in results]) for key in ("train", "refit", "cross_fit", "reference")}
        gains = [r["cross_fit"] - r["reference"] for r in results]
        print(
            f"| {rule} | {mean['train']:.4f} | {mean['refit']:.4f} | {mean['cross_fit']:.4f} "
            f"| {np.mean(gains):+.4f} ({min(gains):+.4f} .. {max(gains):+.4f}) | {sum(g >= 0 for g in gains)} of {len(gains)} "
            f"| {mean['reference']:.4f} | {', '.join(str(r['leaves']) for r in results)} |"
        )


if __name__ == "__main__":
    main()
