"""The generator writes the seed's format, balanced, deterministic, with a known Bayes accuracy."""

import csv
import filecmp
import os

import numpy as np

from shopbusy.components.modules.features import CSV_COLUMNS
from shopbusy.data import generator
from shopbusy.pipeline import config


def test_default_dataset_has_the_articles_shape_and_balance():
    dataset = generator.generate()
    assert dataset.num_rows == 5600
    assert np.bincount(dataset.columns["class"]).tolist() == [2660, 2940]
    assert list(dataset.columns) == CSV_COLUMNS
    assert set(np.unique(dataset.columns["weekday"])) == set(range(1, 8))
    assert len(np.unique(dataset.columns["shop_type"])) == 20


def test_written_csv_has_the_header_and_integer_values(tmp_path):
    path = tmp_path / "shops.csv"
    generator.write_csv(generator.generate(rows=50, seed=3), str(path))
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == CSV_COLUMNS
    assert len(rows) == 51
    assert all(value.lstrip("-").isdigit() for row in rows[1:] for value in row)


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    paths = [tmp_path / name for name in ("a.csv", "b.csv", "c.csv")]
    generator.write_csv(generator.generate(rows=700, seed=11), str(paths[0]))
    generator.write_csv(generator.generate(rows=700, seed=11), str(paths[1]))
    generator.write_csv(generator.generate(rows=700, seed=12), str(paths[2]))
    assert filecmp.cmp(paths[0], paths[1], shallow=False)
    assert not filecmp.cmp(paths[0], paths[2], shallow=False)


def test_bundled_dataset_is_the_generators_default_output(tmp_path):
    regenerated = tmp_path / "shops.csv"
    generator.write_csv(generator.generate(), str(regenerated))
    assert filecmp.cmp(regenerated, config.DEFAULT_DATA, shallow=False)


def test_bayes_accuracy_is_about_090_and_matches_the_drawn_labels():
    for seed in (1, 2, 3):
        dataset = generator.generate(seed=seed)
        assert 0.88 <= dataset.bayes_accuracy <= 0.92
        # The realised accuracy of the Bayes rule is a binomial draw around the expectation.
        assert abs(dataset.bayes_realised_accuracy - dataset.bayes_accuracy) < 0.02


def test_slices_differ_by_shop_type_weekday_and_hour():
    dataset = generator.generate(rows=50_000, seed=4)
    busy = dataset.columns["class"]
    for column in ("shop_type", "weekday", "hour"):
        rates = [busy[dataset.columns[column] == v].mean() for v in np.unique(dataset.columns[column])]
        assert max(rates) - min(rates) > 0.15, column


def test_distractor_columns_carry_no_signal():
    dataset = generator.generate(rows=50_000, seed=4)
    busy = dataset.columns["class"]
    for column in ("another1", "another2", "another3", "another4", "another5", "shop_location"):
        correlation = np.corrcoef(dataset.columns[column], busy)[0, 1]
        assert abs(correlation) < 0.02, column


def test_weeks_share_the_shops_and_drift_as_documented():
    plain = generator.generate_weeks(4, rows=20_000, seed=5)
    covariate = generator.generate_weeks(4, rows=20_000, seed=5, drift_at=3, drift="covariate")
    concept = generator.generate_weeks(4, rows=20_000, seed=5, drift_at=3, drift="concept")
    # Same shops every week; before the drift, the same weeks.
    for week in plain[1:]:
        shops = dict(zip(week.columns["shop_id"], week.columns["shop_type"]))
        assert shops == dict(zip(plain[0].columns["shop_id"], plain[0].columns["shop_type"]))
    assert np.array_equal(covariate[1].columns["class"], plain[1].columns["class"])

    def share(dataset, column, values):
        return np.isin(dataset.columns[column], values).mean()

    # Covariate shift: more restaurants and evenings, the same rule (threshold) as before.
    assert share(covariate[2], "shop_type", range(1, 7)) > share(plain[2], "shop_type", range(1, 7)) + 0.15
    assert share(covariate[2], "hour", range(17, 21)) > share(plain[2], "hour", range(17, 21)) + 0.1
    assert covariate[3].threshold == covariate[0].threshold
    # Concept drift: the same mix, a new rule; the old rule's Bayes decisions now often wrong.
    assert abs(share(concept[2], "hour", range(17, 21)) - share(plain[2], "hour", range(17, 21))) < 0.02
    old_rule = plain[2].busy_probability > 0.5
    new_labels = concept[2].columns["class"] == 1
    assert np.mean(old_rule == new_labels) < 0.75
    assert all(0.85 <= week.bayes_accuracy <= 0.93 for week in concept)


def test_generate_weeks_writes_span_folders(tmp_path):
    from tests.helpers import run_cli

    result = run_cli("generate", "--weeks", 2, "--rows", 200, "--out", tmp_path, "--drift-at", 2, "--drift", "concept")
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path)) == ["span-1", "span-2"]
    assert result.stdout.count("Bayes accuracy") == 2 and "week 2 (drifted: concept)" in result.stdout
    assert run_cli("generate", "--out", tmp_path / "x.csv", "--drift", "concept").returncode == 2


def _rule(name, rows=50_000, seed=4):
    return generator.generate(rows=rows, seed=seed, world=generator.World(rule=name))


def _busy_rate(dataset, mask):
    return dataset.columns["class"][mask].mean()


def test_every_rule_is_balanced_and_has_a_known_bayes_accuracy():
    for name in generator.RULES:
        dataset = _rule(name, rows=20_000)
        assert dataset.world.rule == name
        assert abs(dataset.columns["class"].mean() - generator.BUSY_FRACTION) < 0.005, name
        assert 0.7 <= dataset.bayes_accuracy <= 0.95, name
        assert abs(dataset.bayes_realised_accuracy - dataset.bayes_accuracy) < 0.015, name
        # What the benchmark computes for a subset of rows (the eval split) from their columns.
        again = generator.busy_probability(dataset.columns, dataset.threshold, dataset.world)
        assert np.allclose(again, dataset.busy_probability), name
    assert _rule("noisy").bayes_accuracy < _rule("bundled").bayes_accuracy - 0.08


def test_rules_stress_what_the_bundled_rule_does_not():
    # type-hour: each type's busiest hours are its own, so per-type hour profiles disagree.
    dataset = _rule("type-hour")
    columns = dataset.columns
    peaks = {
        t: max(range(1, 21), key=lambda h: _busy_rate(dataset, (columns["shop_type"] == t) & (columns["hour"] == h)))
        for t in range(1, 21)
    }
    assert len(set(peaks.values())) >= 8
    # distance-cutoff: a step between 8 and 9 km, flat on either side.
    dataset = _rule("distance-cutoff")
    distance = dataset.columns["avgDistance"]
    assert _busy_rate(dataset, distance == 8) - _busy_rate(dataset, distance == 9) > 0.3
    assert abs(_busy_rate(dataset, distance == 3) - _busy_rate(dataset, distance == 7)) < 0.05
    # odd-types: the odd types are busy in the early hours, the others at the rushes.
    dataset = _rule("odd-types")
    odd = np.isin(dataset.columns["shop_type"], generator.ODD_TYPES)
    early, rush = dataset.columns["hour"] <= 6, (dataset.columns["hour"] >= 17)
    assert _busy_rate(dataset, odd & early) > _busy_rate(dataset, odd & rush) + 0.3
    assert _busy_rate(dataset, ~odd & rush) > _busy_rate(dataset, ~odd & early) + 0.3
    # time-distance: a long wait is busy near and quiet far, and says little on its own.
    dataset = _rule("time-distance")
    near, long_wait = dataset.columns["avgDistance"] <= 8, dataset.columns["avgTime"] >= 40
    assert _busy_rate(dataset, near & long_wait) > _busy_rate(dataset, near & ~long_wait) + 0.3
    assert _busy_rate(dataset, ~near & long_wait) < _busy_rate(dataset, ~near & ~long_wait) - 0.3
    assert abs(_busy_rate(dataset, long_wait) - _busy_rate(dataset, ~long_wait)) < 0.1
    # location-time: each kind of location is busiest at hours of its own, whatever the type.
    dataset = _rule("location-time")
    kind, hour = generator.location_kind(dataset.columns["shop_location"]), dataset.columns["hour"]
    peaks = [max(range(1, 21), key=lambda h: _busy_rate(dataset, (kind == k) & (hour == h))) for k in range(3)]
    assert len(set(peaks)) == 3


def test_the_default_rule_is_the_bundled_one_and_a_rule_only_changes_the_labels():
    bundled, odd = generator.generate(rows=700, seed=11), _rule("odd-types", rows=700, seed=11)
    assert all(np.array_equal(bundled.columns[c], odd.columns[c]) for c in CSV_COLUMNS if c != "class")
    assert not np.array_equal(bundled.columns["class"], odd.columns["class"])


def test_generate_with_a_rule_prints_its_bayes_accuracy(tmp_path):
    from tests.helpers import run_cli

    result = run_cli("generate", "--rule", "type-hour", "--rows", 500, "--out", tmp_path / "x.csv")
    assert result.returncode == 0, result.stderr
    assert "(rule type-hour)" in result.stdout and "Bayes accuracy" in result.stdout
    assert run_cli("generate", "--rule", "no-such-rule", "--out", tmp_path / "y.csv").returncode == 2
    concept = run_cli("generate", "--rule", "noisy", "--weeks", 2, "--drift-at", 2, "--drift", "concept", "--out", tmp_path)
    assert concept.returncode == 2 and "concept" in concept.stderr
