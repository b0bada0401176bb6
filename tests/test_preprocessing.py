"""preprocessing_fn through tf.Transform on a small dataset, as Transform runs it."""

import numpy as np
import pytest
import tensorflow_data_validation as tfdv
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import schema_utils

from shopbusy.components.modules import features
from shopbusy.components.modules.preprocessing import preprocessing_fn
from shopbusy.data import generator
from shopbusy.pipeline import config

xf = features.transformed_name


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    dataset = generator.generate(rows=400, seed=9)
    raw = [{name: [int(dataset.columns[name][i])] for name in features.CSV_COLUMNS} for i in range(dataset.num_rows)]
    schema = tfdv.load_schema_text(config.SCHEMA_PATH)
    metadata = tft.DatasetMetadata(schema)
    assert schema_utils.schema_as_feature_spec(schema).feature_spec  # the schema gives a fixed-length spec
    with tft_beam.Context(temp_dir=str(tmp_path_factory.mktemp("tft"))):
        (rows, _), _ = (raw, metadata) | tft_beam.AnalyzeAndTransformDataset(preprocessing_fn)
    columns = {key: np.array([row[key] for row in rows]).ravel() for key in rows[0]}
    return dataset, columns


def test_numeric_columns_are_z_scored(transformed):
    _, columns = transformed
    for key in features.NUMERIC_FEATURE_KEYS:
        assert abs(columns[xf(key)].mean()) < 1e-4, key
        assert abs(columns[xf(key)].std() - 1) < 1e-3, key


def test_categorical_codes_become_vocabulary_indices(transformed):
    dataset, columns = transformed
    for key in features.CATEGORICAL_FEATURE_KEYS:
        distinct = len(np.unique(dataset.columns[key]))
        assert columns[xf(key)].min() == 0
        assert columns[xf(key)].max() == distinct - 1, key  # the OOV bucket is unused in training
        # The mapping is one-to-one: equal codes get equal indices.
        pairs = set(zip(dataset.columns[key].tolist(), columns[xf(key)].tolist()))
        assert len(pairs) == distinct


def test_fixed_domains_are_zero_based_and_label_passes_through(transformed):
    dataset, columns = transformed
    np.testing.assert_array_equal(columns[xf("weekday")], dataset.columns["weekday"] - 1)
    np.testing.assert_array_equal(columns[xf("hour")], dataset.columns["hour"])
    np.testing.assert_array_equal(columns[xf(features.LABEL_KEY)], dataset.columns[features.LABEL_KEY])
    assert xf(features.SHOP_ID_KEY) not in columns
