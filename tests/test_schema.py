"""The curated schema accepts the bundled data and catches each kind of bad value."""

import pytest
import tensorflow_data_validation as tfdv

from shopbusy.components.modules.features import CSV_COLUMNS, FIXED_DOMAIN_FEATURES, LABEL_KEY
from shopbusy.pipeline import config
from tests.helpers import write_dataset

SCHEMA = tfdv.load_schema_text(config.SCHEMA_PATH)


def _anomalies(path):
    # With the schema, as the pipeline's StatisticsGen: categorical columns get value counts.
    statistics = tfdv.generate_statistics_from_csv(path, stats_options=tfdv.StatsOptions(schema=SCHEMA))
    return tfdv.validate_statistics(statistics, SCHEMA, environment="TRAINING").anomaly_info


def test_bundled_data_has_no_anomalies():
    assert dict(_anomalies(config.DEFAULT_DATA)) == {}


def test_schema_covers_the_contract_and_serving_has_no_label():
    assert [f.name for f in SCHEMA.feature] == CSV_COLUMNS
    assert list(tfdv.get_feature(SCHEMA, LABEL_KEY).not_in_environment) == ["SERVING"]


def test_the_fixed_domains_transform_one_hot_encodes_are_the_schemas():
    # features.py repeats them so that Transform and the model need no schema at import time.
    for key, (low, high) in FIXED_DOMAIN_FEATURES.items():
        domain = tfdv.get_feature(SCHEMA, key).int_domain
        assert (domain.min, domain.max, domain.is_categorical) == (low, high, True), key


def _set(column, value):
    def change(columns):
        columns[column][:5] = value

    return change


@pytest.mark.parametrize(
    "column,value",
    [
        ("class", 2),
        ("weekday", 8),
        ("hour", 24),
        ("avgRating", 9),
        ("avgTime", 0),
        ("avgDistance", -3),
        ("another2", -1),
    ],
)
def test_out_of_domain_values_are_anomalies_of_their_column(tmp_path, column, value):
    path = write_dataset(tmp_path / "bad.csv", rows=200, seed=1, transform=_set(column, value))
    anomalies = _anomalies(path)
    assert list(anomalies) == [column]
    assert anomalies[column].description


def test_missing_values_are_anomalies(tmp_path):
    path = tmp_path / "gaps.csv"
    write_dataset(path, rows=200, seed=1)
    lines = path.read_text().splitlines()
    cells = lines[5].split(",")
    cells[8] = ""  # avgRating left empty
    lines[5] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    assert "avgRating" in _anomalies(str(path))


@pytest.mark.parametrize("label", [0, 1])
def test_a_single_class_is_an_anomaly_of_the_label(tmp_path, label):
    def one_class(columns):
        columns[LABEL_KEY][:] = label

    anomalies = _anomalies(write_dataset(tmp_path / "one-class.csv", rows=200, seed=1, transform=one_class))
    assert list(anomalies) == [LABEL_KEY]
    assert "at least 2 unique values" in anomalies[LABEL_KEY].description


def test_predict_scores_a_labelled_file_of_one_class(tmp_path):
    """Scoring is not training: shops all known to be quiet are valid input to `predict`."""
    from shopbusy import serving
    from shopbusy.data import inputs

    def no_busy_shop(columns):
        columns[LABEL_KEY][:] = 0

    path = write_dataset(tmp_path / "quiet.csv", rows=200, seed=1, transform=no_busy_shop)
    assert serving.validate(inputs.resolve(path)) == []
