"""The drift check's configuration comes from the curated schema, and nowhere else."""

from tensorflow_metadata.proto.v0 import schema_pb2

from shopbusy.pipeline import config, drift


def test_every_model_column_has_a_drift_comparator_of_its_kind():
    schema = drift.load_schema()
    for feature in schema.feature:
        if feature.name == "shop_id":  # an identifier: new shops are not drift
            assert not feature.HasField("drift_comparator")
            continue
        expected = "infinity_norm" if feature.int_domain.is_categorical else "jensen_shannon_divergence"
        assert feature.drift_comparator.HasField(expected), feature.name
        assert drift.threshold_of(feature.drift_comparator) > 0, feature.name


def test_the_distribution_validator_gets_the_schemas_comparators_and_thresholds():
    validator = drift.distribution_validator_config(config.SCHEMA_PATH)
    thresholds = drift.thresholds(config.SCHEMA_PATH)
    compared = {
        comparator.path.step[0]: drift.threshold_of(comparator.distribution_comparator)
        for comparator in validator.default_slice_config.feature
    }
    assert compared == thresholds and len(thresholds) == 13


def test_predict_uses_the_drift_thresholds_as_skew_thresholds():
    schema = drift.load_schema()
    skew = drift.skew_schema(schema)
    for original, copied in zip(schema.feature, skew.feature):
        assert copied.skew_comparator == original.drift_comparator
        assert not original.HasField("skew_comparator")  # the loaded schema is not changed
    assert isinstance(skew, schema_pb2.Schema)
