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


def test_a_changed_analysis_gets_a_new_cache_key_and_the_others_keep_theirs():
    """What makes reusing last week's analyzer cache safe (pipeline/resolvers.py): TFT keys
    each cached analysis by its analyzer's graph, so editing how one column is analysed
    invalidates that column's entries and no other's."""
    import tensorflow as tf
    from tensorflow_transform import impl_helper
    from tensorflow_transform.beam import analyzer_cache

    from shopbusy.pipeline import drift

    feature_spec = schema_utils.schema_as_feature_spec(drift.load_schema()).feature_spec
    specs = impl_helper.get_type_specs_from_feature_specs(feature_spec)
    datasets = [analyzer_cache.DatasetKey("span-1"), analyzer_cache.DatasetKey("span-2")]

    def keys(preprocessing_fn):
        return tft_beam.analysis_graph_builder.get_analysis_cache_entry_keys(preprocessing_fn, specs, datasets, False)

    def log_time(inputs):  # the same code, with avgTime analysed on a log scale
        return preprocessing_fn({**inputs, "avgTime": tf.math.log1p(tf.cast(inputs["avgTime"], tf.float32))})

    before, after = keys(preprocessing_fn), keys(log_time)
    assert keys(preprocessing_fn) == before
    assert len(before - after) == 1 and len(after - before) == 1
    assert len(before & after) == len(before) - 1 >= len(features.NUMERIC_FEATURE_KEYS)
