"""Synthetic drone-shop records in the seed article's CSV format, from a documented rule.

The article's data is not published, so this generator writes the same 14 integer columns
from a known "busy" rule with label noise. Because the rule is known, so is the best
accuracy any model can reach on the data (the Bayes accuracy), and the pipeline's test
accuracy can be judged against it.

The rule. Every row gets a busyness score

    score = TYPE_POPULARITY[shop_type] + HOUR_EFFECT[hour] + WEEKDAY_EFFECT[weekday]
            + WEEKEND_EFFECT[shop group] (on weekdays 6 and 7 only)
            + 0.5 * (avgRating - 3) + 0.03 * (avgTime - 35) - 0.05 * (avgDistance - 10)

and is busy when score + NOISE_SCALE[shop_type] * e > threshold, with e drawn from the
standard logistic distribution. The threshold is the quantile that makes the requested
share of rows busy (52.5 % as in the article: 2,940 of 5,600). So P(busy | x) =
sigmoid((score - threshold) / NOISE_SCALE[shop_type]) and the Bayes classifier predicts
busy when score > threshold; its expected accuracy is the mean of max(p, 1 - p).
Noise differs by shop type (some shops are erratic) and the hour, weekday and weekend
effects differ by shop group, so the slices differ. shop_id, shop_location and the five
`another*` columns carry no signal.

Layout: shops 1..S (S = max(20, ceil(rows / 140))), each with a fixed type (1..20, every
type used evenly) and location (1..20); hours 1..20 on each of the 7 weekdays. The default
5,600 rows are the full grid of 40 shops x 7 days x 20 hours; other sizes sample the grid.
"""

import csv
import dataclasses
import math

import numpy as np

from shopbusy.components.modules.features import CSV_COLUMNS

DEFAULT_ROWS = 5600
DEFAULT_SEED = 42
BUSY_FRACTION = 2940 / 5600
NUM_SHOP_TYPES = 20
NUM_LOCATIONS = 20
WEEKDAYS = range(1, 8)
HOURS = range(1, 21)


def type_popularity(shop_type: np.ndarray) -> np.ndarray:
    """Spreads the 20 types over [-1, 1] in a scrambled order."""
    return ((7 * shop_type) % NUM_SHOP_TYPES - 9.5) / 9.5


def noise_scale(shop_type: np.ndarray) -> np.ndarray:
    """Logistic noise scale: types whose code is 0 mod 5 are erratic, the rest are steady."""
    return np.where(shop_type % 5 == 0, 0.6, 0.28)


def hour_effect(hour: np.ndarray) -> np.ndarray:
    """Lunch (11-13) and dinner (17-20) rushes, a quieter afternoon, dead early hours."""
    return np.select(
        [(hour >= 11) & (hour <= 13), (hour >= 17) & (hour <= 20), (hour >= 14) & (hour <= 16), hour >= 7],
        [1.2, 1.5, 0.3, -0.3],
        default=-1.5,
    )


def weekday_effect(weekday: np.ndarray, shop_type: np.ndarray) -> np.ndarray:
    """Busier towards the weekend; restaurants (types 1-6) boom at weekends, offices (15-20) slump."""
    base = np.array([0.0, -0.4, -0.2, 0.0, 0.0, 0.4, 0.8, 0.6])[weekday]
    weekend = weekday >= 6
    group = np.select([shop_type <= 6, shop_type >= 15], [0.6, -0.9], default=0.0)
    return base + np.where(weekend, group, 0.0)


def busy_score(rows: dict) -> np.ndarray:
    """The noise-free busyness score of each row (see the module docstring)."""
    return (
        type_popularity(rows["shop_type"])
        + hour_effect(rows["hour"])
        + weekday_effect(rows["weekday"], rows["shop_type"])
        + 0.5 * (rows["avgRating"] - 3)
        + 0.03 * (rows["avgTime"] - 35)
        - 0.05 * (rows["avgDistance"] - 10)
    )


@dataclasses.dataclass
class Dataset:
    """Generated rows (column name -> int array) and what is known about them."""

    columns: dict
    threshold: float
    busy_probability: np.ndarray

    @property
    def num_rows(self) -> int:
        return len(self.columns["class"])

    @property
    def bayes_accuracy(self) -> float:
        """Expected accuracy of the best possible classifier on these rows."""
        p = self.busy_probability
        return float(np.mean(np.maximum(p, 1 - p)))

    @property
    def bayes_realised_accuracy(self) -> float:
        """Accuracy the Bayes classifier actually got on these rows' drawn labels."""
        return float(np.mean((self.busy_probability > 0.5) == (self.columns["class"] == 1)))


def generate(rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED, busy_fraction: float = BUSY_FRACTION) -> Dataset:
    """Draws `rows` records; the same arguments always give the same data."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    rng = np.random.default_rng(seed)
    slots_per_shop = len(WEEKDAYS) * len(HOURS)
    num_shops = max(NUM_SHOP_TYPES, math.ceil(rows / slots_per_shop))
    shop_types = rng.permutation(np.resize(np.arange(1, NUM_SHOP_TYPES + 1), num_shops))
    shop_locations = rng.integers(1, NUM_LOCATIONS + 1, num_shops)

    # The grid in time order (weekday, hour, shop); a sample of it keeps that order.
    weekday, hour, shop = np.meshgrid(np.array(WEEKDAYS), np.array(HOURS), np.arange(num_shops), indexing="ij")
    weekday, hour, shop = weekday.ravel(), hour.ravel(), shop.ravel()
    if rows < len(shop):
        keep = np.sort(rng.choice(len(shop), rows, replace=False))
        weekday, hour, shop = weekday[keep], hour[keep], shop[keep]

    columns = {
        "shop_id": shop + 1,
        "shop_type": shop_types[shop],
        "shop_location": shop_locations[shop],
        "weekday": weekday,
        "hour": hour,
        "avgTime": rng.integers(10, 61, rows),
        "avgDistance": rng.integers(1, 21, rows),
        "avgRating": rng.integers(1, 6, rows),
        "another1": rng.integers(1, 3, rows),
        "another2": rng.integers(0, 100, rows),
        "another3": rng.integers(0, 21, rows),
        "another4": rng.integers(0, 21, rows),
        "another5": rng.integers(0, 1000, rows),
    }
    score = busy_score(columns)
    scale = noise_scale(columns["shop_type"])
    noisy = score + scale * rng.logistic(size=rows)
    threshold = float(np.quantile(noisy, 1 - busy_fraction))
    columns["class"] = (noisy > threshold).astype(np.int64)
    busy_probability = 1 / (1 + np.exp(-(score - threshold) / scale))
    return Dataset({name: columns[name] for name in CSV_COLUMNS}, threshold, busy_probability)


def write_csv(dataset: Dataset, path: str) -> None:
    """Writes the rows with a header, in the article's column order."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        writer.writerows(np.column_stack([dataset.columns[name] for name in CSV_COLUMNS]).tolist())
