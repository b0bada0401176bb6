"""Checks the input CSVs before any TFX component runs.

TFX reads CSV with type inference and fails deep inside Beam on input it cannot parse, so
what cannot even be read (a missing path, an empty file, a header that is not the contract,
a ragged row, a value that is not an integer) is rejected here, naming file, line, column.
Domain and range checks are ExampleValidator's job, against the curated schema.
"""

import csv
import dataclasses
import os
import re
from typing import List, Optional

from shopbusy.components.modules.features import CSV_COLUMNS

INTEGER = re.compile(r"-?\d+")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # what a tf.Example int64 feature holds
BOM = "\ufeff"
# Weekly data: one folder per span, DIR/span-1/, DIR/span-2/, ... ExampleGen's own span
# mechanism ({SPAN} in the input pattern) picks the newest; see resolve().
SPAN_FOLDER = re.compile(r"span-(\d+)")
SPAN_PATTERN = "span-{SPAN}/*"
MAX_REPORTED = 10  # problems listed before the rest are summarised


class InputError(Exception):
    """The input cannot be used; the message names file, column and problem."""


@dataclasses.dataclass(frozen=True)
class DataSource:
    """Where CsvExampleGen reads: a folder and a file pattern within it. With span folders,
    `files` are the newest span's, which is what a run ingests."""

    root: str
    pattern: str
    files: List[str]
    total_bytes: int
    span: Optional[int] = None  # the newest span; None for a file or a folder of CSVs (span 0)


def _data_files(folder: str) -> List[str]:
    names = sorted(n for n in os.listdir(folder) if not n.startswith(".") and os.path.isfile(os.path.join(folder, n)))
    return [os.path.join(folder, n) for n in names]


def span_folders(path: str) -> dict:
    """The span folders directly under `path`: span number -> folder."""
    spans = {}
    for name in os.listdir(path):
        match = SPAN_FOLDER.fullmatch(name)
        if match and os.path.isdir(os.path.join(path, name)):
            span = int(match.group(1))
            if span in spans:
                raise InputError(f"{path}: folders {os.path.basename(spans[span])} and {name} are both span {span}")
            spans[span] = os.path.join(path, name)
    return spans


def span_pattern(path: str, spans: dict) -> str:
    """ExampleGen's input pattern for these span folders: `span-{SPAN}/*` for span-1, span-10,
    ...; `span-{SPAN:W}/*` when they are zero-padded to W digits (span-01 ... span-52). The
    newest span is found either way, but a given span (a backfill's static range) is put back
    into the pattern as a number, padded only to the spec's width (TFX 1.16,
    components/example_gen/utils.py, `get_pattern_for_span_version`): `{SPAN}` would look for
    span-1 where the folder is span-01."""
    digits = [SPAN_FOLDER.fullmatch(os.path.basename(folder)).group(1) for folder in spans.values()]
    if not any(len(d) > 1 and d.startswith("0") for d in digits):
        return SPAN_PATTERN
    if len({len(d) for d in digits}) > 1:
        names = ", ".join(os.path.basename(spans[span]) for span in sorted(spans))
        raise InputError(
            f"{path}: span folders numbered two ways ({names}): name them span-1, span-2, ... "
            "or zero-pad every number to the same width (span-01, ..., span-52)"
        )
    return f"span-{{SPAN:{len(digits[0])}}}/*"


def resolve(path: str) -> DataSource:
    """A CSV file, a folder of CSV files (every non-hidden file in it is read), or a folder
    of span folders (span-1/, span-2/, ...), of which the newest is ingested.

    The span is resolved again by CsvExampleGen's driver from the same {SPAN} pattern; the
    newest span is found here too so that the pre-flight checks and the up-to-date digest
    cover the files the run will read."""
    path = os.path.abspath(path)
    span = None
    if os.path.isfile(path):
        root, pattern, files = os.path.dirname(path), os.path.basename(path), [path]
    elif os.path.isdir(path):
        spans = span_folders(path)
        if spans:
            span = max(spans)
            files = _data_files(spans[span])
            if not files:
                raise InputError(f"{spans[span]}: the newest span's folder holds no CSV file")
            root, pattern = path, span_pattern(path, spans)
        else:
            files = _data_files(path)
            if not files:
                raise InputError(f"{path}: the folder holds no CSV file")
            root, pattern = path, "*"
    else:
        raise InputError(f"{path}: no such file or folder")
    return DataSource(root, pattern, files, sum(os.path.getsize(f) for f in files), span)


def span_source(root: str, span: int, spans: Optional[dict] = None) -> DataSource:
    """One span of a folder of span folders (a backfill ingests it by number); `spans`, the
    folders `span_folders` listed, when the caller looks at several spans of one root."""
    spans = span_folders(root) if spans is None else spans
    files = _data_files(spans[span])
    if not files:
        raise InputError(f"{spans[span]}: the span's folder holds no CSV file")
    return DataSource(root, span_pattern(root, spans), files, sum(os.path.getsize(f) for f in files), span)


def check(source: DataSource, optional_columns=()) -> int:
    """Raises InputError listing every problem found; returns the number of data rows.
    `optional_columns` may be absent (the label, when scoring)."""
    problems, rows, header = [], 0, None
    for path in source.files:
        file_header, file_rows = _check_file(path, problems, optional_columns)
        rows += file_rows
        if header is None:
            header = file_header
        elif file_header is not None and file_header != header:
            problems.append(f"{path}: the columns are not in the same order as in {source.files[0]}")
    if not problems and rows == 0:
        problems.append(f"{source.root}: no data rows")
    if problems:
        shown = problems[:MAX_REPORTED]
        if len(problems) > MAX_REPORTED:
            shown.append(f"... and {len(problems) - MAX_REPORTED} more problems")
        raise InputError("input rejected:\n  " + "\n  ".join(shown))
    return rows


def _value_problem(value: str):
    """Why a cell cannot be an integer feature, or None."""
    if value == "":
        return "the value is missing"
    if not INTEGER.fullmatch(value):
        return f"{value[:40]!r} is not an integer"
    if not INT64_MIN <= int(value) <= INT64_MAX:
        return f"{value[:40]} does not fit a 64-bit integer"
    return None


def _check_file(path: str, problems: List[str], optional_columns=()):
    """Appends the file's problems; returns its header (or None) and its data row count."""
    if os.path.getsize(path) == 0:
        problems.append(f"{path}: the file is empty (a header line and data rows are expected)")
        return None, 0
    rows = 0
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, [])
            if header and header[0].startswith(BOM):
                problems.append(f"{path}: the file starts with a byte-order mark; save it as UTF-8 without one")
                return header, 0
            missing = [c for c in CSV_COLUMNS if c not in header and c not in optional_columns]
            unknown = [c for c in header if c not in CSV_COLUMNS]
            duplicated = sorted({c for c in header if header.count(c) > 1})
            for column in missing:
                problems.append(f"{path}: column '{column}' is missing from the header")
            for column in unknown:
                problems.append(f"{path}: column '{column}' is not part of the data contract")
            for column in duplicated:
                problems.append(f"{path}: column '{column}' appears more than once in the header")
            if missing or unknown or duplicated:
                return header, 0
            bad_columns = set()
            for line_number, row in enumerate(reader, start=2):
                if not row:
                    continue
                rows += 1
                if len(row) != len(header):
                    problems.append(f"{path}, line {line_number}: {len(row)} values where the header has {len(header)}")
                    continue
                for column, value in zip(header, row):
                    if column in bad_columns:
                        continue  # one report per column keeps the message short
                    problem = _value_problem(value)
                    if problem:
                        bad_columns.add(column)
                        problems.append(f"{path}, line {line_number}, column '{column}': {problem}")
    except UnicodeDecodeError as e:
        problems.append(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})")
        return None, rows
    return header, rows
