"""Input that cannot even be read is rejected before any TFX component runs, by name."""

import os

import pytest

from shopbusy.data import inputs
from tests.helpers import run_cli

HEADER = "class,shop_id,shop_type,shop_location,weekday,hour,avgTime,avgDistance,avgRating,another1,another2,another3,another4,another5"
ROW = "1,1,2,7,1,12,27,19,3,2,45,8,18,801"


def _write(tmp_path, text, name="shops.csv", mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


def _rejection(path) -> str:
    with pytest.raises(inputs.InputError) as error:
        inputs.check(inputs.resolve(path))
    return str(error.value)


def test_a_valid_file_and_a_folder_are_accepted(tmp_path):
    path = _write(tmp_path, f"{HEADER}\n{ROW}\n{ROW}\n")
    assert inputs.check(inputs.resolve(path)) == 2
    _write(tmp_path, f"{HEADER}\n{ROW}\n", name="more.csv")
    source = inputs.resolve(str(tmp_path))
    assert (source.root, source.pattern, len(source.files)) == (str(tmp_path), "*", 2)
    assert inputs.check(source) == 3


def test_missing_path(tmp_path):
    with pytest.raises(inputs.InputError, match="no such file or folder"):
        inputs.resolve(str(tmp_path / "nope.csv"))


def test_empty_file_and_header_only(tmp_path):
    assert "shops.csv: the file is empty" in _rejection(_write(tmp_path, ""))
    assert "no data rows" in _rejection(_write(tmp_path, HEADER + "\n"))


def test_missing_and_unknown_columns_are_named(tmp_path):
    header = HEADER.replace("avgRating", "stars")
    message = _rejection(_write(tmp_path, f"{header}\n{ROW}\n"))
    assert "column 'avgRating' is missing" in message
    assert "column 'stars' is not part of the data contract" in message


def test_non_integer_value_names_file_line_and_column(tmp_path):
    bad = ROW.replace(",27,", ",abc,")
    path = _write(tmp_path, f"{HEADER}\n{ROW}\n{bad}\n")
    assert f"{path}, line 3, column 'avgTime': 'abc' is not an integer" in _rejection(path)


def test_ragged_row_and_non_utf8(tmp_path):
    assert "line 2: 13 values where the header has 14" in _rejection(
        _write(tmp_path, f"{HEADER}\n{ROW.rsplit(',', 1)[0]}\n")
    )
    assert "not UTF-8" in _rejection(_write(tmp_path, (HEADER + "\n1,\xff\n").encode("latin-1"), mode="wb"))


def test_cli_exits_2_naming_the_problem_and_creates_nothing(tmp_path):
    path = _write(tmp_path, f"{HEADER}\n{ROW.replace(',3,', ',x,')}\n")
    workdir = tmp_path / "workdir"
    result = run_cli("run", "--data", path, "--workdir", workdir, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "column 'avgRating'" in result.stderr and path in result.stderr
    assert "Traceback" not in result.stderr
    assert not os.path.exists(workdir)


def test_span_folders_resolve_to_examplegens_span_pattern_and_the_newest_span(tmp_path):
    for span in (1, 2, 10):
        (tmp_path / f"span-{span}").mkdir()
        _write(tmp_path / f"span-{span}", f"{HEADER}\n" + f"{ROW}\n" * span)
    (tmp_path / "notes").mkdir()  # not a span folder: ignored
    source = inputs.resolve(str(tmp_path))
    assert (source.pattern, source.span) == ("span-{SPAN}/*", 10)  # 10 after 2: numbers, not text
    assert source.files == [str(tmp_path / "span-10" / "shops.csv")]
    assert inputs.check(source) == 10  # the pre-flight reads the span the run ingests


def test_a_file_or_a_plain_folder_is_span_0_as_before(tmp_path):
    path = _write(tmp_path, f"{HEADER}\n{ROW}\n")
    assert inputs.resolve(path).span is None and inputs.resolve(str(tmp_path)).span is None


def test_ambiguous_or_empty_newest_span_is_refused(tmp_path):
    (tmp_path / "span-3").mkdir()
    with pytest.raises(inputs.InputError, match="newest span's folder holds no CSV"):
        inputs.resolve(str(tmp_path))
    (tmp_path / "span-03").mkdir()
    with pytest.raises(inputs.InputError, match="both span 3"):
        inputs.resolve(str(tmp_path))


def test_zero_padded_span_folders_get_examplegens_width_so_a_given_span_is_found(tmp_path):
    """ExampleGen finds the newest span of span-01 ... span-12 with either spec, but puts a
    given span (a backfill's) back into the pattern as a number: only `{SPAN:2}` pads it."""
    from tfx.components.example_gen import utils
    from tfx.proto import example_gen_pb2, range_config_pb2

    def ingested(pattern, span=None):
        """The span ExampleGen's driver ingests for `pattern`, the newest or a given one."""
        split = example_gen_pb2.Input.Split(name="single_split", pattern=pattern)
        given = range_config_pb2.RangeConfig(static_range=range_config_pb2.StaticRange(start_span_number=span, end_span_number=span))
        return utils.calculate_splits_fingerprint_span_and_version(str(tmp_path), [split], given if span else None)[1]

    for span in (1, 2, 12):
        (tmp_path / f"span-{span:02d}").mkdir()
        _write(tmp_path / f"span-{span:02d}", f"{HEADER}\n{ROW}\n")
    source = inputs.resolve(str(tmp_path))
    assert (source.pattern, source.span) == ("span-{SPAN:2}/*", 12)
    assert ingested(source.pattern) == 12
    backfill = inputs.span_source(str(tmp_path), 1)
    assert ingested(backfill.pattern, 1) == 1
    with pytest.raises(ValueError, match="Cannot find matching"):  # what `{SPAN}` did
        ingested("span-{SPAN}/*", 1)

    (tmp_path / "span-3").mkdir()  # numbered the other way
    _write(tmp_path / "span-3", f"{HEADER}\n{ROW}\n")
    with pytest.raises(inputs.InputError, match=r"span folders numbered two ways \(span-01, span-02, span-3, span-12\)"):
        inputs.resolve(str(tmp_path))
