"""Measures TFDV's drift distances between consecutive generated weeks, to choose the
drift thresholds of the curated schema (shopbusy/schemas/schema.pbtxt, "Drift").

For each seed, rows per week and drift kind: the distance of every column between week 2
and week 3 (drift, when any, starts at week 3) on a 50 % sample of each week, which is what
the pipeline compares (the train splits). L-infinity for categorical columns,
Jensen-Shannon divergence for numeric ones, as TFDV computes them.

    .venv/bin/python bench/drift_thresholds.py > bench/results/drift-thresholds.txt
"""

import numpy as np
import pandas as pd
import tensorflow_data_validation as tfdv

from shopbusy.components.modules.features import CSV_COLUMNS
from shopbusy.data import generator
from shopbusy.pipeline import drift

SEEDS = (1, 2, 3, 4, 5)
ROWS = (1500, 5600, 20000)


def _statistics(dataset, seed):
    # With the schema, as the pipeline's StatisticsGen: its categorical integer columns get
    # value counts, which the L-infinity distance compares.
    frame = pd.DataFrame(dataset.columns)[CSV_COLUMNS]
    options = tfdv.StatsOptions(schema=drift.load_schema())
    return tfdv.generate_statistics_from_dataframe(frame.sample(frac=0.5, random_state=seed), stats_options=options)


def distances(previous, current) -> dict:
    """Column -> distance, with every comparator's threshold at 0 so each is reported."""
    schema = drift.load_schema()
    for feature in schema.feature:
        comparator = feature.drift_comparator
        if comparator.HasField("infinity_norm"):
            comparator.infinity_norm.threshold = 0.0
        if comparator.HasField("jensen_shannon_divergence"):
            comparator.jensen_shannon_divergence.threshold = 0.0
    anomalies = tfdv.validate_statistics(current, schema, previous_statistics=previous)
    return {
        ".".join(info.path.step): max(m.value for m in info.drift_measurements) for info in anomalies.drift_skew_info
    }


def main():
    thresholds = drift.thresholds(drift.SCHEMA_PATH)
    columns = sorted(thresholds)
    print("kind       rows  seed  " + " ".join(f"{c[:11]:>11}" for c in columns))
    worst = {}
    for kind in (None, "covariate", "concept"):
        for rows in ROWS:
            for seed in SEEDS:
                weeks = generator.generate_weeks(3, rows, seed, drift_at=3 if kind else None, drift=kind)
                measured = distances(_statistics(weeks[1], seed), _statistics(weeks[2], seed + 100))
                key = (kind or "none", rows)
                for c in columns:
                    worst[key + (c,)] = max(worst.get(key + (c,), 0.0), measured[c])
                print(f"{kind or 'none':<9} {rows:>5} {seed:>5}  " + " ".join(f"{measured[c]:>11.4f}" for c in columns))
    print("\nthreshold            " + " ".join(f"{thresholds[c]:>11.4f}" for c in columns))
    for kind in ("none", "covariate", "concept"):
        for rows in ROWS:
            flagged = [c for c in columns if worst[(kind, rows, c)] > thresholds[c]]
            print(f"{kind:<9} {rows:>5} worst over seeds exceeds the threshold in: {', '.join(flagged) or '-'}")


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
