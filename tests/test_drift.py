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


def _statistics(columns: dict):
    import pandas as pd
    import tensorflow_data_validation as tfdv

    options = tfdv.StatsOptions(schema=drift.load_schema())  # integer codes as categories
    return tfdv.generate_statistics_from_dataframe(pd.DataFrame(columns), stats_options=options)


def _drifted(baseline: dict, newest: dict) -> set:
    """The columns TFX 1.16's DistributionValidator flags for this pair, with our config: the
    executor's own steps (tfx/components/distribution_validator/executor.py, Do)."""
    import tensorflow_data_validation as tfdv
    from tfx.components.distribution_validator import executor

    validator_config = drift.distribution_validator_config(config.SCHEMA_PATH)
    del validator_config.default_slice_config.feature[:]  # only the columns this test makes
    for comparator in drift.distribution_validator_config(config.SCHEMA_PATH).default_slice_config.feature:
        if comparator.path.step[0] in newest:
            validator_config.default_slice_config.feature.add().CopyFrom(comparator)
    baseline_statistics, newest_statistics = _statistics(baseline), _statistics(newest)
    schema = executor._make_schema_from_config(validator_config, baseline_statistics)  # noqa: SLF001
    anomalies = tfdv.validate_statistics(newest_statistics, schema, previous_statistics=baseline_statistics)
    return set(executor._get_comparison_only_anomalies(anomalies).anomaly_info)  # noqa: SLF001


def _weekdays(shift: float, rows: int = 7000) -> list:
    """Weekday codes, each day 1/7 of the rows except that `shift` of them move to day 1:
    the L-infinity distance to the uniform week is exactly `shift`."""
    moved = round(rows * shift)
    counts = {day: rows // 7 - moved // 6 for day in range(2, 8)}
    counts[1] = rows - sum(counts.values())
    return [day for day, count in counts.items() for _ in range(count)]


def test_the_validator_flags_a_shift_past_the_schemas_threshold_and_not_one_short_of_it():
    [weekday] = [feature for feature in drift.load_schema().feature if feature.name == "weekday"]
    threshold = drift.threshold_of(weekday.drift_comparator)  # L-infinity, from the schema
    uniform = _weekdays(0.0)
    assert _drifted({"weekday": uniform}, {"weekday": _weekdays(threshold * 0.6)}) == set()
    assert _drifted({"weekday": uniform}, {"weekday": _weekdays(threshold * 1.6)}) == {"weekday"}
    # A numeric column under Jensen-Shannon: the same values pass, a shifted range does not.
    times = [float(10 + i % 40) for i in range(7000)]
    assert _drifted({"weekday": uniform, "avgTime": times}, {"weekday": uniform, "avgTime": times}) == set()
    later = [t + 30.0 for t in times]
    assert _drifted({"weekday": uniform, "avgTime": times}, {"weekday": uniform, "avgTime": later}) == {"avgTime"}


def test_predict_uses_the_drift_thresholds_as_skew_thresholds():
    schema = drift.load_schema()
    skew = drift.skew_schema(schema)
    for original, copied in zip(schema.feature, skew.feature):
        assert copied.skew_comparator == original.drift_comparator
        assert not original.HasField("skew_comparator")  # the loaded schema is not changed
    assert isinstance(skew, schema_pb2.Schema)
