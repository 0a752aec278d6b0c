"""CSV files read as tables: the delimiter detected, numeric features, classes from a target
column."""

import csv
import io
import math
from array import array
from dataclasses import dataclass
from pathlib import Path

import torch

SNIFF_BYTES = 64 * 1024
DELIMITERS = ",;\t"
# Feature values a worker reads at most (800 MB as doubles): no upload may exhaust its memory.
MAX_NUMBERS = 100_000_000


class TableRejected(Exception):
    """The CSV cannot be used as asked; the message names the column, row or value."""


@dataclass(frozen=True)
class TableHeader:
    delimiter: str
    columns: list[str]
    target: str
    features: list[str]


@dataclass(frozen=True)
class Table:
    features: torch.Tensor  # float64 (N, F), as written in the file
    labels: torch.Tensor  # (N,) indices into classes
    classes: list[str]
    feature_columns: list[str]


def _open(path: Path) -> io.TextIOWrapper:
    # utf-8-sig drops a byte-order mark; newline="" lets csv handle quoted CRLF itself.
    return open(path, encoding="utf-8-sig", newline="")


def read_header(path: Path, target: str, drop: list[str]) -> TableHeader:
    """The CSV's delimiter and columns, checked against the target and the columns to drop."""
    try:
        with _open(path) as file:
            sample = file.read(SNIFF_BYTES)
    except UnicodeDecodeError:
        raise TableRejected("the file is not UTF-8 text, nor a zip or tar.gz archive") from None
    if not sample.strip():
        raise TableRejected("the CSV is empty")
    delimiter = _delimiter(sample)
    columns = [name.strip() for name in next(csv.reader(io.StringIO(sample), delimiter=delimiter))]
    duplicated = sorted({name for name in columns if columns.count(name) > 1})
    if duplicated:
        raise TableRejected(f"columns appear more than once: {', '.join(duplicated)}")
    missing = [name for name in [target, *drop] if name not in columns]
    if missing:
        raise TableRejected(
            f"no column {', '.join(map(repr, missing))} in the CSV; its columns are "
            f"{', '.join(map(repr, columns))}"
        )
    features = [name for name in columns if name != target and name not in drop]
    if not features:
        raise TableRejected("no feature columns are left once the target and drop are taken out")
    return TableHeader(delimiter, columns, target, features)


def _delimiter(sample: str) -> str:
    """The sniffed delimiter; failing that (rows of uneven length, say), the one that splits
    the header into the most columns."""
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        pass
    header = sample.splitlines()[0]
    fields = {d: len(next(csv.reader([header], delimiter=d))) for d in DELIMITERS}
    best = max(fields, key=lambda d: fields[d])
    if fields[best] < 2:
        raise TableRejected("could not tell the CSV's delimiter: use commas, semicolons or tabs")
    return best


def _number(text: str, column: str, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        shown = repr(text) if text.strip() else "an empty cell"
        raise TableRejected(f"line {line}, column {column!r}: {shown} is not a number")
    return value


def _class_order(values: set[str]) -> list[str]:
    try:
        return sorted(values, key=float)  # 3, 4, ..., 10 rather than 10, 3, 4
    except ValueError:
        return sorted(values)


def read_table(path: Path, target: str, drop: list[str]) -> Table:
    """Every row: the feature columns as numbers and the target's value as a class."""
    header = read_header(path, target, drop)
    where = [header.columns.index(name) for name in header.features]
    target_at = header.columns.index(target)
    # Packed doubles, 8 bytes a number: a list of Python floats would take four times that.
    numbers = array("d")
    values: list[str] = []
    with _open(path) as file:
        reader = csv.reader(file, delimiter=header.delimiter)
        next(reader)
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # a blank line, often the last
            if len(row) != len(header.columns):
                raise TableRejected(
                    f"line {line} has {len(row)} fields; the header has {len(header.columns)}"
                )
            label = row[target_at].strip()
            if not label:
                raise TableRejected(f"line {line}, column {target!r}: the target is empty")
            values.append(label)
            numbers.extend(_number(row[i].strip(), header.columns[i], line) for i in where)
            if len(numbers) > MAX_NUMBERS:
                raise TableRejected(f"the table holds more than {MAX_NUMBERS} feature values")
    classes = _class_order(set(values))
    if len(classes) < 2:
        raise TableRejected(
            f"the target {target!r} has {len(classes)} value(s); a classifier needs 2"
        )
    index = {name: i for i, name in enumerate(classes)}
    return Table(
        features=torch.frombuffer(numbers, dtype=torch.float64).view(-1, len(where)).clone(),
        labels=torch.tensor([index[v] for v in values], dtype=torch.long),
        classes=classes,
        feature_columns=header.features,
    )
