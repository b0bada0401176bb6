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

Other rules (`RULES`, `shopbusy generate --rule NAME`). Users bring their own shops, whose
busy rule is not the bundled one; these rules stress what the bundled, nearly additive rule
does not. They were written before any model was fitted to them, from what real shops do:

- "bundled": the rule above.
- "type-hour": every shop type has its own two rushes (4-hour windows starting at hours of
  its own), its own closed weekday, and either likes or shuns weekends; little else matters. Pure shop type x hour and shop
  type x weekday interactions, no main effect worth the name.
- "distance-cutoff": threshold effects of numeric columns: drones are quick within 8 km and
  slow beyond (a step in avgDistance), slow deliveries (avgTime over 45 min) put customers
  off, and a rating of 4 or 5 is what people look for; hours and types matter mildly.
- "odd-types": the bundled rule, except that three shop types (3, 8 and 14: night kiosks)
  behave unlike all others: busy in the early hours and quiet at the rushes, busier on
  weekdays than at weekends, and the rating works the other way.
- "noisy": the bundled score with 2.5 times the label noise (`shopbusy generate --rule noisy`
  prints its Bayes accuracy; docs/benchmarks.md gives it by seed).
- "time-distance": numeric cut-offs that matter only together. A long wait (avgTime of 40
  min or more) at a short distance (8 km or less) is a queue: busy. The same wait at a long
  distance is a slow fleet, which puts customers off: quiet. A short wait says little either
  way, so the wait has no effect of its own. A good rating (4-5) draws customers to far shops
  only, and a poor one (1-2) drives them from near ones only; hours matter mildly.
- "location-time": the location decides when a shop is busy, whatever its type. Locations
  are office districts (busy at lunch, 11-14, quiet at weekends), residential streets (busy
  in the evening, 17-20, and at weekends) or nightlife quarters (busy from 19 and in the
  early hours, 1-3, on Fridays and Saturdays most); which location is which is scrambled.

Every rule gives P(busy | x) in closed form, so every one has a known Bayes accuracy.

Weeks and drift (`generate_weeks`). Weekly data is one span per week, drawn from the same
shops (same types and locations) with fresh rows each week. From week W on the world may
change in one of two documented ways:

- covariate shift ("covariate"): the mix of rows changes, the rule does not. Restaurants
  (types 1-6) make up three times their share, evening hours (17-20) twice theirs, and the
  early hours (1-6) a third. P(busy | x) is unchanged: the threshold is week 1's.
- concept drift ("concept"): the rule changes, the mix does not. The lunch rush moves to
  hours 8-10 and the dinner rush to 14-16 (the old rush hours become quiet afternoon
  hours), and the popularity ranking of the types is reversed (the busiest type becomes the
  quietest). The threshold is recomputed for the new rule, on its first week.

Layout: shops 1..S (S = max(20, ceil(rows / 140))), each with a fixed type (1..20, every
type used evenly) and location (1..20); hours 1..20 on each of the 7 weekdays. The default
5,600 rows are the full grid of 40 shops x 7 days x 20 hours; other sizes sample the grid.
"""

import csv
import dataclasses
import math
from typing import Callable, Dict, List, Optional

import numpy as np

from shopbusy.components.modules.features import CSV_COLUMNS

DEFAULT_ROWS = 5600
DEFAULT_SEED = 42
BUSY_FRACTION = 2940 / 5600
NUM_SHOP_TYPES = 20
NUM_LOCATIONS = 20
WEEKDAYS = range(1, 8)
HOURS = range(1, 21)


DRIFT_KINDS = ("covariate", "concept")
DEFAULT_RULE = "bundled"


@dataclasses.dataclass(frozen=True)
class World:
    """What the rows are drawn from: the busy rule, the mix of rows, the threshold."""

    rule: str = DEFAULT_RULE  # a key of RULES
    concept_drift: bool = False  # the changed rule (see the module docstring)
    covariate_shift: bool = False  # the changed mix of shop types and hours
    threshold: Optional[float] = None  # None: the quantile giving the busy fraction


def type_popularity(shop_type: np.ndarray, reversed_ranking: bool = False) -> np.ndarray:
    """Spreads the 20 types over [-1, 1] in a scrambled order (reversed after concept drift)."""
    popularity = ((7 * shop_type) % NUM_SHOP_TYPES - 9.5) / 9.5
    return -popularity if reversed_ranking else popularity


def noise_scale(shop_type: np.ndarray) -> np.ndarray:
    """Logistic noise scale: types whose code is 0 mod 5 are erratic, the rest are steady."""
    return np.where(shop_type % 5 == 0, 0.6, 0.28)


def hour_effect(hour: np.ndarray, moved_rushes: bool = False) -> np.ndarray:
    """Lunch (11-13) and dinner (17-20) rushes, a quieter afternoon, dead early hours; after
    concept drift the rushes are at 8-10 and 14-16 and the old rush hours are quiet."""
    if moved_rushes:
        return np.select(
            [(hour >= 8) & (hour <= 10), (hour >= 14) & (hour <= 16), (hour >= 11) & (hour <= 20), hour >= 7],
            [1.2, 1.5, 0.3, -0.3],
            default=-1.5,
        )
    return np.select(
        [(hour >= 11) & (hour <= 13), (hour >= 17) & (hour <= 20), (hour >= 14) & (hour <= 16), hour >= 7],
        [1.2, 1.5, 0.3, -0.3],
        default=-1.5,
    )


def _row_weights(shop_type: np.ndarray, hour: np.ndarray) -> np.ndarray:
    """How much more often a (type, hour) row is drawn after covariate shift."""
    by_type = np.where(shop_type <= 6, 3.0, 1.0)
    by_hour = np.select([(hour >= 17) & (hour <= 20), hour <= 6], [2.0, 1 / 3], default=1.0)
    return by_type * by_hour


def weekday_effect(weekday: np.ndarray, shop_type: np.ndarray) -> np.ndarray:
    """Busier towards the weekend; restaurants (types 1-6) boom at weekends, offices (15-20) slump."""
    base = np.array([0.0, -0.4, -0.2, 0.0, 0.0, 0.4, 0.8, 0.6])[weekday]
    weekend = weekday >= 6
    group = np.select([shop_type <= 6, shop_type >= 15], [0.6, -0.9], default=0.0)
    return base + np.where(weekend, group, 0.0)


def _bundled_score(rows: dict, world: World) -> np.ndarray:
    return (
        type_popularity(rows["shop_type"], world.concept_drift)
        + hour_effect(rows["hour"], world.concept_drift)
        + weekday_effect(rows["weekday"], rows["shop_type"])
        + 0.5 * (rows["avgRating"] - 3)
        + 0.03 * (rows["avgTime"] - 35)
        - 0.05 * (rows["avgDistance"] - 10)
    )


def _type_hour_score(rows: dict, world: World) -> np.ndarray:
    shop_type, hour, weekday = rows["shop_type"], rows["hour"], rows["weekday"]
    # Two 4-hour rushes per type, starting at hours of its own (1..11, then 5..9 hours later).
    first_rush = (shop_type * 7) % 11 + 1
    second_rush = first_rush + 5 + (shop_type * 3) % 5
    in_rush = ((hour >= first_rush) & (hour < first_rush + 4)) | ((hour >= second_rush) & (hour < second_rush + 4))
    closed_day = (shop_type * 3) % 7 + 1
    weekend_lover = np.where(shop_type % 2 == 0, 0.5, -0.5) * np.where(weekday >= 6, 1, -0.4)
    return np.where(in_rush, 1.5, -1.0) - 2.5 * (weekday == closed_day) + weekend_lover + 0.15 * (rows["avgRating"] - 3)


def _distance_cutoff_score(rows: dict, world: World) -> np.ndarray:
    return (
        np.where(rows["avgDistance"] <= 8, 1.4, -1.0)
        - 1.1 * (rows["avgTime"] > 45)
        + 0.9 * (rows["avgRating"] >= 4)
        + 0.3 * type_popularity(rows["shop_type"])
        + 0.3 * hour_effect(rows["hour"])
    )


ODD_TYPES = (3, 8, 14)


def _odd_types_score(rows: dict, world: World) -> np.ndarray:
    odd = np.isin(rows["shop_type"], ODD_TYPES)
    night_kiosk = (
        -hour_effect(rows["hour"])
        - 0.8 * (rows["weekday"] >= 6)
        - 0.5 * (rows["avgRating"] - 3)
        + 0.03 * (rows["avgTime"] - 35)
        - 0.05 * (rows["avgDistance"] - 10)
    )
    return np.where(odd, night_kiosk, _bundled_score(rows, world))


def _time_distance_score(rows: dict, world: World) -> np.ndarray:
    near, long_wait = rows["avgDistance"] <= 8, rows["avgTime"] >= 40
    rating = rows["avgRating"]
    return (
        1.6 * (near & long_wait)
        - 1.1 * (~near & long_wait)
        + 0.9 * ((rating >= 4) & ~near)
        - 0.9 * ((rating <= 2) & near)
        + 0.25 * hour_effect(rows["hour"])
    )


def location_kind(shop_location: np.ndarray) -> np.ndarray:
    """0 office district, 1 residential street, 2 nightlife quarter, scrambled over locations."""
    return (shop_location * 7 + 2) % 3


def _location_time_score(rows: dict, world: World) -> np.ndarray:
    kind, hour, weekday = location_kind(rows["shop_location"]), rows["hour"], rows["weekday"]
    weekend = weekday >= 6
    peak = np.select(
        [kind == 0, kind == 1],
        [(hour >= 11) & (hour <= 14), (hour >= 17) & (hour <= 20)],
        default=(hour >= 19) | (hour <= 3),
    )
    day = np.select(
        [kind == 0, kind == 1],
        [np.where(weekend, -1.2, 0.2), np.where(weekend, 0.6, -0.2)],
        default=np.where((weekday == 5) | (weekday == 6), 0.8, -0.3),
    )
    return 1.8 * peak + day + 0.3 * type_popularity(rows["shop_type"]) + 0.15 * (rows["avgRating"] - 3)


@dataclasses.dataclass(frozen=True)
class Rule:
    """A busy rule: the noise-free score of a row and the logistic noise scale of its label."""

    score: Callable[[dict, World], np.ndarray]
    noise: Callable[[np.ndarray], np.ndarray]  # of the shop types
    summary: str


RULES: Dict[str, Rule] = {
    "bundled": Rule(_bundled_score, noise_scale, "the bundled data's rule: nearly additive"),
    "type-hour": Rule(
        _type_hour_score, lambda t: np.full(t.shape, 0.3), "each shop type its own rush hours and closed day"
    ),
    "distance-cutoff": Rule(
        _distance_cutoff_score, lambda t: np.full(t.shape, 0.3), "steps in distance, delivery time and rating"
    ),
    "odd-types": Rule(_odd_types_score, noise_scale, "the bundled rule, but 3 shop types behave the other way"),
    "noisy": Rule(_bundled_score, lambda t: 2.5 * noise_scale(t), "the bundled rule with 2.5 x the label noise"),
    "time-distance": Rule(
        _time_distance_score, lambda t: np.full(t.shape, 0.3), "cut-offs in delivery time and distance that act together"
    ),
    "location-time": Rule(
        _location_time_score, lambda t: np.full(t.shape, 0.3), "each location its own busy hours and days"
    ),
}


def busy_score(rows: dict, world: World = World()) -> np.ndarray:
    """The noise-free busyness score of each row under the world's rule."""
    if world.rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {world.rule!r}")
    if world.concept_drift and world.rule != DEFAULT_RULE:
        raise ValueError(f"concept drift is defined for the {DEFAULT_RULE} rule only")
    return RULES[world.rule].score(rows, world)


def busy_probability(rows: dict, threshold: float, world: World = World()) -> np.ndarray:
    """P(busy | x) of each row: what the best possible classifier knows (see the docstring)."""
    scale = RULES[world.rule].noise(rows["shop_type"])
    return 1 / (1 + np.exp(-(busy_score(rows, world) - threshold) / scale))


@dataclasses.dataclass
class Dataset:
    """Generated rows (column name -> int array) and what is known about them."""

    columns: dict
    threshold: float
    busy_probability: np.ndarray
    world: World = World()

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


def generate(
    rows: int = DEFAULT_ROWS,
    seed: int = DEFAULT_SEED,
    busy_fraction: float = BUSY_FRACTION,
    world: World = World(),
    week: Optional[int] = None,
) -> Dataset:
    """Draws `rows` records; the same arguments always give the same data. `week` draws that
    week's rows from the same shops (the shops depend on `seed` alone)."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    rng = np.random.default_rng(seed)
    slots_per_shop = len(WEEKDAYS) * len(HOURS)
    num_shops = max(NUM_SHOP_TYPES, math.ceil(rows / slots_per_shop))
    shop_types = rng.permutation(np.resize(np.arange(1, NUM_SHOP_TYPES + 1), num_shops))
    shop_locations = rng.integers(1, NUM_LOCATIONS + 1, num_shops)
    if week is not None:
        rng = np.random.default_rng([seed, week])

    # The grid in time order (weekday, hour, shop); a sample of it keeps that order.
    weekday, hour, shop = np.meshgrid(np.array(WEEKDAYS), np.array(HOURS), np.arange(num_shops), indexing="ij")
    weekday, hour, shop = weekday.ravel(), hour.ravel(), shop.ravel()
    if world.covariate_shift:
        weights = _row_weights(shop_types[shop], hour)
        keep = np.sort(rng.choice(len(shop), rows, replace=True, p=weights / weights.sum()))
        weekday, hour, shop = weekday[keep], hour[keep], shop[keep]
    elif rows < len(shop):
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
    score = busy_score(columns, world)
    scale = RULES[world.rule].noise(columns["shop_type"])
    noisy = score + scale * rng.logistic(size=rows)
    threshold = world.threshold if world.threshold is not None else float(np.quantile(noisy, 1 - busy_fraction))
    columns["class"] = (noisy > threshold).astype(np.int64)
    world = dataclasses.replace(world, threshold=threshold)
    return Dataset({name: columns[name] for name in CSV_COLUMNS}, threshold, busy_probability(columns, threshold, world), world)


def generate_weeks(
    weeks: int,
    rows: int = DEFAULT_ROWS,
    seed: int = DEFAULT_SEED,
    drift_at: Optional[int] = None,
    drift: Optional[str] = None,
    rule: str = DEFAULT_RULE,
) -> List[Dataset]:
    """Weeks 1..`weeks` of the same shops under `rule`; from week `drift_at` on, `drift`
    (DRIFT_KINDS) changes the world as the module docstring says."""
    if drift is not None and drift not in DRIFT_KINDS:
        raise ValueError(f"drift must be one of {', '.join(DRIFT_KINDS)}, got {drift!r}")
    datasets, world = [], World(rule=rule)
    for week in range(1, weeks + 1):
        if drift and week == drift_at:
            # A new rule gets its own threshold on its first week; a new mix keeps the rule's.
            world = World(rule, concept_drift=drift == "concept", covariate_shift=drift == "covariate", threshold=None)
            if drift == "covariate":
                world = dataclasses.replace(world, threshold=datasets[-1].threshold if datasets else None)
        dataset = generate(rows, seed, world=world, week=week)
        world = dataclasses.replace(world, threshold=dataset.threshold)
        datasets.append(dataset)
    return datasets


def write_csv(dataset: Dataset, path: str) -> None:
    """Writes the rows with a header, in the article's column order."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        writer.writerows(np.column_stack([dataset.columns[name] for name in CSV_COLUMNS]).tolist())
