"""What the command does alike for every uploaded resource it lists, shows and deletes (datasets,
weights files): upload one with a progress bar, print a page of them or one of them, as a table
or as the server's JSON, or delete one."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import RenderableType
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from app.cli import render
from app.cli.connection import err, out, server
from app.cli.remote import Remote


def print_page(
    url: str,
    path: str,
    limit: int,
    as_json: bool,
    table: Callable[[list[dict[str, Any]], int, int], RenderableType],
) -> None:
    """The first `limit` items at `path` (newest first): `table(items, total, width)`."""
    with server(url) as remote:
        page = remote.request("GET", path, params={"limit": limit})
    if as_json:
        render.print_json(out, page)
    else:
        out.print(table(page["items"], page["total"], out.width))


def print_one(
    url: str, path: str, as_json: bool, view: Callable[[dict[str, Any]], RenderableType]
) -> None:
    """The item at `path`: `view(item)`."""
    with server(url) as remote:
        found = remote.request("GET", path)
    if as_json:
        render.print_json(out, found)
    else:
        out.print(view(found))


def delete_one(url: str, path: str, what: str) -> None:
    """Delete the item at `path`, and say that `what` ("dataset ds-...") is gone."""
    with server(url) as remote:
        remote.request("DELETE", path)
    out.print(f"{what} deleted")


def upload_with_bar(
    remote: Remote, file: Path, fields: dict[str, str], path: str = "/datasets"
) -> dict[str, Any]:
    """Upload `file` to `path`, with a bar on stderr while it goes when stderr is a terminal."""
    bar = Progress(
        TextColumn("uploading"),
        BarColumn(bar_width=20),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(compact=True),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    with bar:
        task = bar.add_task("upload", total=file.stat().st_size)
        answer: dict[str, Any] = remote.upload(
            path, file, fields, lambda sent: bar.advance(task, sent)
        )
    return answer
