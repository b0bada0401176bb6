"""The generator writes the seed's format, balanced, deterministic, with a known Bayes accuracy."""

import csv
import filecmp

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
