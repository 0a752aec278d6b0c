"""`trainserve predict|predict-rows`: a model's answers for image files or rows of a table."""

import csv
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli import render
from app.cli.connection import DEFAULT_URL, AsJson, Url, err, fail, out, server
from app.cli.remote import ServerError

PANEL = "Predict"

ModelOption = Annotated[
    str | None,
    typer.Option(help="The registered model (default: the server's default model)."),
]
AliasOption = Annotated[
    str | None, typer.Option(help="The model's alias to use (default: production).")
]
VersionOption = Annotated[int | None, typer.Option(min=1, help="The model's version.")]
JobOption = Annotated[int | None, typer.Option(min=1, help="The job whose model answers, instead.")]
TopOption = Annotated[int, typer.Option(min=1, help="Classes to show for each input.")]


def ranked(answer: dict[str, Any]) -> str:
    """ "cat 81.20%, dog 9.10%": the top classes of one answer."""
    return ", ".join(
        f"{top_class['label']} {render.percent(top_class['probability'])}"
        for top_class in answer["top_k"]
    )


def read_rows(source: str, dropped: list[str]) -> list[dict[str, Any]]:
    """Rows from a CSV file (a header, then numbers), a JSON file, or JSON given inline:
    `[{"column": number, ...}, ...]`; columns in `dropped` are left out."""
    path = Path(source)
    if source.lstrip().startswith("["):
        rows = _json_rows(source, "the rows given")
    elif not path.is_file():
        raise typer.BadParameter(f"{source} is neither a file nor JSON rows", param_hint="ROWS")
    elif path.suffix.lower() == ".json":
        rows = _json_rows(path.read_text(), str(path))
    else:
        try:
            return _csv_rows(path, dropped)
        except UnicodeDecodeError:
            raise typer.BadParameter(f"{path} is not UTF-8 text", param_hint="ROWS") from None
    return [
        {column: value for column, value in row.items() if column not in dropped} for row in rows
    ]


def _json_rows(text: str, where: str) -> list[dict[str, Any]]:
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"{where}: invalid JSON ({exc})", param_hint="ROWS") from None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise typer.BadParameter(f"{where}: not a JSON list of objects", param_hint="ROWS")
    return rows


def _csv_rows(path: Path, dropped: list[str]) -> list[dict[str, Any]]:
    # utf-8-sig: a spreadsheet's byte-order mark is not part of the first column's name.
    with path.open(newline="", encoding="utf-8-sig") as file:
        sample = file.read(64 * 1024)
        file.seek(0)
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel  # type: ignore[assignment]
        rows = []
        reader = csv.DictReader(file, dialect=dialect)
        reader.fieldnames = [name.strip() for name in reader.fieldnames or []]
        for row in reader:
            line = reader.line_num
            try:
                rows.append(
                    {column: float(value) for column, value in row.items() if column not in dropped}
                )
            except (TypeError, ValueError):
                raise typer.BadParameter(
                    f"{path}, line {line}: every value must be a number (leave the target and "
                    "other text columns out with --drop COLUMN)",
                    param_hint="ROWS",
                ) from None
    return rows


def register(cli: typer.Typer) -> None:
    """Add the prediction commands."""

    @cli.command(rich_help_panel=PANEL)
    def predict(
        images: Annotated[
            list[Path], typer.Argument(exists=True, dir_okay=False, help="Image files.")
        ],
        url: Url = DEFAULT_URL,
        model: ModelOption = None,
        alias: AliasOption = None,
        version: VersionOption = None,
        job: JobOption = None,
        top: TopOption = 1,
        as_json: AsJson = False,
    ) -> None:
        """Classify images with a registered model or a job's model.

        By default the server's default model answers, at its production alias."""
        params = {"model": model, "alias": alias, "version": version, "job_id": job, "top_k": top}
        failed = 0
        answers: list[dict[str, Any]] = []
        with server(url) as remote:
            for image in images:
                try:
                    answer = remote.predict(image, params)
                except ServerError as exc:
                    err.print(f"[red]error:[/] {render.literal(f'{image}: {exc}')}")
                    failed += 1
                    continue
                answers.append({"image": str(image), **answer})
                if not as_json:
                    out.print(f"{image}: {ranked(answer)} ({render.answered_by(answer)})")
        if as_json:
            render.print_json(out, answers)
        if failed:
            raise typer.Exit(1)

    @cli.command("predict-rows", rich_help_panel=PANEL)
    def predict_rows(
        rows: Annotated[
            str,
            typer.Argument(
                help='A CSV file with a header row, a JSON file, or JSON: [{"alcohol": 9.4, '
                "...}, ...].",
            ),
        ],
        url: Url = DEFAULT_URL,
        model: ModelOption = None,
        alias: AliasOption = None,
        version: VersionOption = None,
        job: JobOption = None,
        drop: Annotated[
            list[str] | None,
            typer.Option(metavar="COLUMN", help="A column to leave out (repeatable)."),
        ] = None,
        top: TopOption = 1,
        as_json: AsJson = False,
    ) -> None:
        """Classify rows of a table with a model trained on a CSV dataset.

        Name the model with --model or --job: the default model is usually an image model."""
        body = {"rows": read_rows(rows, drop or [])}
        if not body["rows"]:
            fail(f"{rows}: no rows")
        params = {"model": model, "alias": alias, "version": version, "job_id": job, "top_k": top}
        params = {name: value for name, value in params.items() if value is not None}
        with server(url) as remote:
            answer = remote.request("POST", "/predict/rows", json=body, params=params)
        if as_json:
            render.print_json(out, answer)
            return
        for number, prediction in enumerate(answer["predictions"], start=1):
            out.print(f"row {number}: {ranked(prediction)}")
        out.print(
            f"({render.plural(len(answer['predictions']), 'row')}, {render.answered_by(answer)})"
        )
