"""The columnar CSV executor must write the examples stock CsvExampleGen writes."""

import apache_beam as beam
import tensorflow as tf
from apache_beam.testing.util import assert_that, equal_to
from tfx.components.example_gen.csv_example_gen.executor import _CsvToExample
from tfx.types import standard_component_specs

from shopbusy.components import columnar_csv_example_gen
from shopbusy.components.columnar_csv_example_gen import _CsvToSerializedExamples, _encode, _read_blocks, column_types

CSV = """class,shop_type,rating,name,note
1,3,4.5,north,x
0,17,,south,
1,,2.0,"east, upper",y
"""


def _as_dict(example: tf.train.Example) -> dict:
    """Feature name -> (kind, values); an empty list keeps its kind."""
    return {
        name: (feature.WhichOneof("kind"), tuple(getattr(feature, feature.WhichOneof("kind")).value))
        for name, feature in example.features.feature.items()
    }


def _rows(examples) -> list:
    return sorted(tuple(sorted(_as_dict(tf.train.Example.FromString(e)).items())) for e in examples)


def _direct(tmp_path) -> list:
    """Our conversion, called directly, file by file."""
    files = sorted(str(path) for path in tmp_path.glob("*.csv"))
    types = column_types(files)
    return _rows(e for path in files for block in _read_blocks(path, types) for e in _encode(block))


def _assert_pipeline_writes(transform, tmp_path, expected) -> None:
    """Runs `transform` as ExampleGen would and checks it yields exactly `expected` rows."""
    exec_properties = {standard_component_specs.INPUT_BASE_KEY: str(tmp_path)}
    with beam.Pipeline() as pipeline:
        records = pipeline | transform(exec_properties, "*.csv")
        rows = records | beam.Map(
            lambda r: tuple(sorted(_as_dict(r if isinstance(r, tf.train.Example) else tf.train.Example.FromString(r)).items()))
        )
        assert_that(rows, equal_to(expected))


def test_same_examples_as_stock_csv_example_gen(tmp_path):
    (tmp_path / "shops.csv").write_text(CSV)
    ours = _direct(tmp_path)
    assert len(ours) == 3
    assert dict(ours[0])["name"][0] == "bytes_list" and dict(ours[0])["rating"][0] == "float_list"
    _assert_pipeline_writes(_CsvToExample, tmp_path, ours)  # stock writes exactly these
    _assert_pipeline_writes(_CsvToSerializedExamples, tmp_path, ours)


def test_rows_of_every_file_matching_the_pattern(tmp_path):
    (tmp_path / "a.csv").write_text("class,hour\n1,5\n0,6\n")
    (tmp_path / "b.csv").write_text("class,hour\n1,7\n")
    ours = _direct(tmp_path)
    assert sorted(dict(row)["hour"][1][0] for row in ours) == [5, 6, 7]
    _assert_pipeline_writes(_CsvToSerializedExamples, tmp_path, ours)


def test_a_columns_type_comes_from_every_row_not_the_first_block(tmp_path, monkeypatch):
    # Integers for many blocks, then one decimal and one word: stock CsvExampleGen, which
    # infers over all rows, makes `rating` a float column and `note` a bytes column.
    rows = "".join(f"{i % 2},{i % 5},{i}\n" for i in range(200))
    (tmp_path / "a.csv").write_text("class,rating,note\n" + rows + "1,2.5,x\n")
    (tmp_path / "b.csv").write_text("class,rating,note\n" + rows)
    monkeypatch.setattr(columnar_csv_example_gen, "BLOCK_BYTES", 64)  # blocks of a few rows
    ours = _direct(tmp_path)
    assert len(ours) == 401
    assert {dict(row)["rating"][0] for row in ours} == {"float_list"}
    assert {dict(row)["note"][0] for row in ours} == {"bytes_list"}
    assert {dict(row)["class"][0] for row in ours} == {"int64_list"}
    _assert_pipeline_writes(_CsvToExample, tmp_path, ours)  # stock writes exactly these
    _assert_pipeline_writes(_CsvToSerializedExamples, tmp_path, ours)


def test_an_unresolved_span_pattern_is_resolved_in_the_executor(tmp_path):
    """The open-source KFP backend runs no ExampleGen driver: the executor resolves {SPAN}."""
    import json

    from tfx.proto import example_gen_pb2
    from tfx.utils import proto_utils

    for span in (1, 2):
        (tmp_path / f"span-{span}").mkdir()
        (tmp_path / f"span-{span}" / "a.csv").write_text(CSV)
    input_config = example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="single_split", pattern="span-{SPAN}/*")])
    resolved = columnar_csv_example_gen._resolve_span(
        {
            standard_component_specs.INPUT_BASE_KEY: str(tmp_path),
            standard_component_specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(input_config),
        }
    )
    assert resolved["span"] == 2
    assert json.loads(resolved[standard_component_specs.INPUT_CONFIG_KEY])["splits"][0]["pattern"] == "span-2/*"
    assert "num_files:1" in resolved["input_fingerprint"]
    # Already resolved and fingerprinted (by a driver): left as it is.
    assert columnar_csv_example_gen._resolve_span(resolved) is resolved
    # A plain pattern without a driver is fingerprinted too (span 0): the blessing names it.
    plain = example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="single_split", pattern="span-1/*")])
    fingerprinted = columnar_csv_example_gen._resolve_span(
        {
            standard_component_specs.INPUT_BASE_KEY: str(tmp_path),
            standard_component_specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(plain),
        }
    )
    assert fingerprinted["span"] == 0 and "num_files:1" in fingerprinted["input_fingerprint"]


def test_a_clusters_span_pattern_reads_zero_padded_folders(tmp_path):
    """A cluster spec is compiled before its data exists, so its pattern is `span-{SPAN}/*`
    whatever the folders are called (kubeflow/runner.py). For the newest span, the only one a
    cluster run ingests, TFX puts the matched folder's own digits back into the pattern (TFX
    1.16, components/example_gen/utils.py, `_get_target_span_version`): span-01 ... span-12
    are read as they are, by ExampleGen's executor and by the UpToDate task alike."""
    import json

    from tfx.proto import example_gen_pb2
    from tfx.utils import proto_utils

    from shopbusy.data.inputs import SPAN_PATTERN
    from shopbusy.kubeflow import up_to_date

    input_config = example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="single_split", pattern=SPAN_PATTERN)])
    input_config_json = proto_utils.proto_to_json(input_config)

    def ingested():
        """(span, pattern read, fingerprint) as the executor resolves them without a driver."""
        resolved = columnar_csv_example_gen._resolve_span(
            {standard_component_specs.INPUT_BASE_KEY: str(tmp_path), standard_component_specs.INPUT_CONFIG_KEY: input_config_json}
        )
        pattern = json.loads(resolved[standard_component_specs.INPUT_CONFIG_KEY])["splits"][0]["pattern"]
        return resolved["span"], pattern, resolved["input_fingerprint"]

    for span in (1, 3):
        (tmp_path / f"span-{span:02d}").mkdir()
        (tmp_path / f"span-{span:02d}" / "a.csv").write_text(CSV)
    span, pattern, fingerprint = ingested()
    assert (span, pattern) == (3, "span-03/*") and "num_files:1" in fingerprint  # not span-3/*

    (tmp_path / "span-12").mkdir()
    for name in ("a.csv", "b.csv"):
        (tmp_path / "span-12" / name).write_text(CSV)
    span, pattern, fingerprint = ingested()
    assert (span, pattern) == (12, "span-12/*") and "num_files:2" in fingerprint
    assert up_to_date.newest_data(str(tmp_path), input_config_json) == (12, fingerprint)


def test_the_same_csv_gives_the_same_bytes_in_another_process(tmp_path):
    """TFX splits by a hash of the serialized example: bytes that changed from process to
    process put the same CSV into different train/valid/eval splits on every run."""
    import hashlib
    import subprocess
    import sys

    (tmp_path / "shops.csv").write_text(CSV)
    # It leaves as shopbusy's processes do (cli entry_point, kubeflow entrypoint.leave): with
    # TensorFlow, Beam and pyarrow loaded, the C library's exit now and then aborts after the
    # work is done (SIGABRT, "terminate called without an active exception"; CI, 12-01).
    script = (
        "import hashlib, os, sys\n"
        "from shopbusy.components.columnar_csv_example_gen import _encode, _read_blocks, column_types\n"
        "path = sys.argv[1]\n"
        "types = column_types([path])\n"
        "print(' '.join(hashlib.sha256(e).hexdigest() for b in _read_blocks(path, types) for e in _encode(b)), flush=True)\n"
        "os._exit(0)\n"
    )
    runs = [
        subprocess.run([sys.executable, "-c", script, str(tmp_path / "shops.csv")], capture_output=True, text=True, check=True)
        .stdout.split()
        for _ in range(2)
    ]
    here = [hashlib.sha256(e).hexdigest() for block in _read_blocks(str(tmp_path / "shops.csv"), column_types([str(tmp_path / "shops.csv")])) for e in _encode(block)]
    assert runs[0] == runs[1] == here
    assert len(here) == 3
