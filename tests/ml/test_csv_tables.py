"""CSV tables: delimiters, quoting and line endings detected; every bad cell named."""

from pathlib import Path

import pytest
import torch

from app.ml.csv_tables import TableRejected, read_header, read_table
from app.ml.table_datasets import prepare_table

ROWS = [("1.5", "2", "a", "low"), ("2.5", "4", "b", "high"), ("3.5", "8", "c", "low")]


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize(
    ("delimiter", "newline", "quote", "bom"),
    [(",", "\r\n", "", False), (";", "\n", '"', False), ("\t", "\n", "", True)],
)
def test_delimiters_quotes_line_endings_and_bom(
    tmp_path: Path, delimiter: str, newline: str, quote: str, bom: bool
) -> None:
    header = delimiter.join(f"{quote}{n}{quote}" for n in ("fixed acidity", "pH", "Id", "kind"))
    lines = [header] + [delimiter.join(row) for row in ROWS]
    text = ("\ufeff" if bom else "") + newline.join(lines) + newline
    path = write(tmp_path / "table.csv", text)
    table = read_table(path, "kind", ["Id"])
    assert table.feature_columns == ["fixed acidity", "pH"]
    assert table.classes == ["high", "low"]
    assert table.labels.tolist() == [1, 0, 1]
    assert torch.equal(table.features, torch.tensor([[1.5, 2.0], [2.5, 4.0], [3.5, 8.0]]).double())


def test_numeric_classes_sort_as_numbers(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "x,y\n1,10\n2,9\n3,10\n4,3\n")
    assert read_table(path, "y", []).classes == ["3", "9", "10"]


@pytest.mark.parametrize(
    ("text", "target", "drop", "message"),
    [
        ("a,b\n1,2\n", "quality", [], "no column 'quality' in the CSV; its columns are 'a', 'b'"),
        ("a,b\n1,2\n", "b", ["Id"], "no column 'Id' in the CSV"),
        ("a,b\n1,x\n2,y\n", "a", ["b"], "no feature columns are left"),
        ("a,a,b\n1,2,3\n", "b", [], "columns appear more than once: a"),
        ("a,b\n1,2\nseven,3\n", "b", [], "line 3, column 'a': 'seven' is not a number"),
        ("a,b\n1,2\n,3\n", "b", [], "line 3, column 'a': an empty cell is not a number"),
        ("a,b\n1,2\nnan,3\n", "b", [], "line 3, column 'a': 'nan' is not a number"),
        ("a,b\n1,2\n3,4,5\n", "b", [], "line 3 has 3 fields; the header has 2"),
        ("a,b\n1,2\n3,2\n", "b", [], "the target 'b' has 1 value(s); a classifier needs 2"),
        ("a,b\n1,2\n3,\n", "b", [], "line 3, column 'b': the target is empty"),
        ("", "b", [], "the CSV is empty"),
    ],
)
def test_bad_tables_name_what_is_wrong(
    tmp_path: Path, text: str, target: str, drop: list[str], message: str
) -> None:
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(TableRejected) as refused:
        read_table(path, target, drop)
    assert message in str(refused.value)


def test_a_table_too_big_for_memory_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.ml.csv_tables.MAX_NUMBERS", 5)
    path = write(tmp_path / "t.csv", "a,b,c\n1,2,x\n3,4,y\n5,6,x\n")
    with pytest.raises(TableRejected, match="the table holds more than 5 feature values"):
        read_table(path, "c", [])


def test_binary_is_not_a_table(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"\xff\xfe\x00\x81" * 100)
    with pytest.raises(TableRejected, match="not UTF-8 text"):
        read_header(path, "a", [])


def test_features_are_standardised_with_the_training_split_only(tmp_path: Path) -> None:
    lines = ["x,label"] + [f"{i},{i % 2}" for i in range(100)]
    path = write(tmp_path / "t.csv", "\n".join(lines))
    table = prepare_table(path, target="label", drop=[], test_fraction=0.2, seed=42)
    assert len(table.train) == 80 and len(table.test) == 20
    assert table.train.images.dtype == torch.float32
    assert abs(float(table.train.images.mean())) < 1e-6
    assert float(table.train.images.std(unbiased=False)) == pytest.approx(1.0, abs=1e-6)
    # The statistics are the training rows' own: the test rows are not in them.
    train_x = torch.tensor([float(i) for i in range(100)])
    kept = (
        table.train.images.squeeze(1).double() * table.standardizer.std + table.standardizer.mean
    ).round()
    assert table.standardizer.mean.item() == pytest.approx(float(kept.mean()))
    assert set(kept.tolist()) < set(train_x.tolist())
