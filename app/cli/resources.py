"""What the command does alike for every uploaded resource it lists, shows and deletes (datasets,
weights files): print a page of them or one of them, as a table or as the server's JSON, or
delete one."""

from collections.abc import Callable
from typing import Any

from rich.console import RenderableType

from app.cli import render
from app.cli.connection import out, server


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
