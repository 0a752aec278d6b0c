"""The rows `trainserve predict-rows` reads: CSV as spreadsheets write it, JSON files and JSON."""

from pathlib import Path

import pytest
import typer

from app.cli.predicting import read_rows


def test_a_spreadsheet_csv_with_a_byte_order_mark_semicolons_and_spaces(tmp_path: Path) -> None:
    table = tmp_path / "rows.csv"
    table.write_bytes("\ufeffid; alcohol ;pH;quality\n1;9.4;3.51;5\n2;9.8;3.2;6\n".encode())
    assert read_rows(str(table), ["id", "quality"]) == [
        {"alcohol": 9.4, "pH": 3.51},
        {"alcohol": 9.8, "pH": 3.2},
    ]


def test_json_files_and_inline_json(tmp_path: Path) -> None:
    rows = tmp_path / "rows.json"
    rows.write_text('[{"a": 1, "b": 2}]')
    assert read_rows(str(rows), ["b"]) == [{"a": 1}]
    assert read_rows('[{"a": 1.5}]', []) == [{"a": 1.5}]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"a,b\n1,x\n", "rows.csv, line 2: every value must be a number (leave the target and "
         "other text columns out with --drop COLUMN)"),
        ("a;b\n1;caf\u00e9\n".encode("cp1252"), "rows.csv is not UTF-8 text"),
    ],
)  # fmt: skip
def test_what_is_not_numbers_is_a_usage_error(tmp_path: Path, content: bytes, message: str) -> None:
    table = tmp_path / "rows.csv"
    table.write_bytes(content)
    with pytest.raises(typer.BadParameter) as refused:
        read_rows(str(table), [])
    assert str(refused.value) == f"{tmp_path}/{message}"
