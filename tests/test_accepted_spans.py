"""The record of accepted spans a cluster run keeps under its pipeline root, and the two tasks
that read it (components/accepted_spans.py). Written and read through TFX's filesystem
layer, as on gs://; TensorFlow's ram:// stands in for the bucket."""

import json
import os
import uuid

from tfx.dsl.io import fileio
from tfx.types import standard_artifacts

from shopbusy.components import accepted_spans, spanwise_transform
from shopbusy.components.accepted_spans import (
    ACCEPTED_DIR_KEY,
    ACCEPTED_SPANS_PROPERTY,
    NUM_SPANS_KEY,
    AcceptedTrainingSpansExecutor,
    PreviousAcceptedStatisticsExecutor,
)

SPLITS = ["train", "valid", "eval"]


def _root():
    return f"ram://accepted-{uuid.uuid4().hex}"


def _examples(root, span, version=0):
    examples = standard_artifacts.Examples()
    examples.uri = f"{root}/examples/{span}-{version}"
    examples.span, examples.version = span, version
    examples.split_names = json.dumps(SPLITS)
    examples.set_string_custom_property("payload_format", "FORMAT_TF_EXAMPLE")
    examples.set_string_custom_property("input_fingerprint", f"span {span} version {version}")
    for split in SPLITS:
        fileio.makedirs(f"{examples.uri}/Split-{split}")
        with fileio.open(f"{examples.uri}/Split-{split}/data_tfrecord-00000-of-00001.gz", "w") as f:
            f.write(f"{split} rows of span {span} version {version}")
    return examples


def _statistics(root, span):
    statistics = standard_artifacts.ExampleStatistics()
    statistics.uri = f"{root}/statistics/{span}"
    statistics.span = span
    statistics.split_names = json.dumps(SPLITS)
    for split in SPLITS:
        fileio.makedirs(f"{statistics.uri}/Split-{split}")
        with fileio.open(f"{statistics.uri}/Split-{split}/FeatureStats.pb", "w") as f:
            f.write(f"statistics of span {span}")
    return statistics


def _accept(root, span, version=0):
    return accepted_spans.record_accepted(f"{root}/accepted", _examples(root, span, version), _statistics(root, span))


def test_an_accepted_span_is_recorded_whole_and_a_corrected_span_replaces_its_record():
    root = _root()
    assert accepted_spans.accepted(f"{root}/accepted") == []  # no record yet: no folder
    _accept(root, 2)
    _accept(root, 1)
    path = _accept(root, 2, version=1)  # span 2 again, with corrected files
    assert os.path.basename(path) == "span-2.json"
    records = accepted_spans.accepted(f"{root}/accepted")
    assert [(r["span"], r["version"]) for r in records] == [(1, 0), (2, 1)]
    assert records[1]["examples"] == f"{root}/examples/2-1" and records[1]["statistics"] == f"{root}/statistics/2"
    assert records[1]["input_fingerprint"] == "span 2 version 1" and records[1]["split_names"] == SPLITS
    # Only span-<N>.json files are records: a write in progress (or killed) is not one.
    assert sorted(fileio.listdir(f"{root}/accepted")) == ["span-1.json", "span-2.json"]
    with fileio.open(f"{root}/accepted/.span-3.json.partial", "w") as f:
        f.write('{"span": 3')
    assert [r["span"] for r in accepted_spans.accepted(f"{root}/accepted")] == [1, 2]


def _previous(root, span):
    statistics = standard_artifacts.ExampleStatistics()
    statistics.uri = f"{root}/baseline/{span}"
    PreviousAcceptedStatisticsExecutor().Do(
        {"examples": [_examples(root, span)]}, {"statistics": [statistics]}, {ACCEPTED_DIR_KEY: f"{root}/accepted"}
    )
    return statistics


def test_the_drift_baseline_is_the_newest_accepted_span_before_the_new_one():
    root = _root()
    first = _previous(root, 1)  # nothing accepted yet
    assert accepted_spans.is_empty(first) and not fileio.exists(first.uri)
    _accept(root, 1)
    _accept(root, 2)  # span 3 was rejected: never recorded
    baseline = _previous(root, 4)
    assert not accepted_spans.is_empty(baseline)
    assert json.loads(baseline.get_string_custom_property(ACCEPTED_SPANS_PROPERTY)) == [2]
    assert baseline.span == 2 and json.loads(baseline.split_names) == SPLITS
    with fileio.open(f"{baseline.uri}/Split-train/FeatureStats.pb") as f:
        assert f.read() == "statistics of span 2"
    # A span ingested again is compared with the span before it, not with itself.
    assert json.loads(_previous(root, 2).get_string_custom_property(ACCEPTED_SPANS_PROPERTY)) == [1]


def _training(root, span, num_spans):
    merged = standard_artifacts.Examples()
    merged.uri = f"{root}/training/{span}"
    new = _examples(root, span)
    AcceptedTrainingSpansExecutor().Do(
        {"examples": [new]},
        {"training_examples": [merged]},
        {ACCEPTED_DIR_KEY: f"{root}/accepted", NUM_SPANS_KEY: num_spans},
    )
    return merged


def test_training_examples_hold_the_new_span_and_the_accepted_spans_before_it():
    root = _root()
    for span in (1, 2):
        _accept(root, span)
    _accept(root, 3, version=1)  # the newest version of span 3 counts
    # Span 4 was rejected; span 5 is new (the gate recorded it, the reader adds it itself).
    merged = _training(root, 5, num_spans=3)
    assert json.loads(merged.get_string_custom_property(ACCEPTED_SPANS_PROPERTY)) == [2, 3, 5]
    assert merged.span == 5 and json.loads(merged.split_names) == SPLITS
    assert merged.get_string_custom_property("payload_format") == "FORMAT_TF_EXAMPLE"
    assert merged.get_string_custom_property("input_fingerprint") == "span 5 version 0"
    for split in SPLITS:
        files = sorted(fileio.listdir(f"{merged.uri}/Split-{split}"))
        assert files == [f"span-{span}-data_tfrecord-00000-of-00001.gz" for span in (2, 3, 5)]
        with fileio.open(f"{merged.uri}/Split-{split}/span-3-data_tfrecord-00000-of-00001.gz") as f:
            assert f.read() == f"{split} rows of span 3 version 1"
    # Transform reads each span where it was written (spanwise_transform.py): span 3's newest version.
    assert json.loads(merged.get_string_custom_property(accepted_spans.SPAN_EXAMPLES_PROPERTY)) == [
        [2, f"{root}/examples/2-0"], [3, f"{root}/examples/3-1"], [5, f"{root}/examples/5-0"]
    ]  # fmt: skip
    # The first week: the new span alone.
    assert json.loads(_training(_root(), 1, num_spans=2).get_string_custom_property(ACCEPTED_SPANS_PROPERTY)) == [1]


def test_a_span_reads_the_analyzer_cache_the_newest_accepted_span_before_it_wrote_down():
    root = _root()
    accepted_dir = f"{root}/accepted"
    assert spanwise_transform.cache_before(accepted_dir, 2) is None  # no record folder yet
    for span in (1, 2, 4):  # span 3 was rejected: its Transform never ran
        fileio.makedirs(f"{root}/cache/{span}")
        spanwise_transform.record_cache(accepted_dir, span, f"{root}/cache/{span}")
    assert spanwise_transform.cache_before(accepted_dir, 1) is None
    assert spanwise_transform.cache_before(accepted_dir, 3) == f"{root}/cache/2"
    assert spanwise_transform.cache_before(accepted_dir, 5) == f"{root}/cache/4"
    spanwise_transform.record_cache(accepted_dir, 4, f"{root}/cache/gone")  # a re-run's, since deleted
    assert spanwise_transform.cache_before(accepted_dir, 5) is None  # analysed afresh, not an error
    # The cache records are not accepted spans, and leave no temporary file behind.
    _accept(root, 1)
    assert [record["span"] for record in accepted_spans.accepted(accepted_dir)] == [1]
    assert not [name for name in fileio.listdir(accepted_dir) if name.startswith(".")]
