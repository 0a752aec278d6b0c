"""`trainserve compare`: jobs side by side from the command line."""

from typing import Annotated

import typer

from app.cli import render
from app.cli.connection import DEFAULT_URL, AsJson, Url, out, server
from app.cli.jobs import PANEL
from app.cli.side_by_side import comparison_tables


def register(cli: typer.Typer) -> None:
    """Add the command that compares jobs."""

    @cli.command(rich_help_panel=PANEL)
    def compare(
        job_ids: Annotated[
            list[int], typer.Argument(min=1, help="2 to 10 job ids, in the order to show them.")
        ],
        url: Url = DEFAULT_URL,
        as_json: AsJson = False,
    ) -> None:
        """Jobs side by side: final metrics, the config fields that differ, per-class accuracy
        with the best marked (loss and accuracy curves too with --json)."""
        params = {"ids": ",".join(map(str, job_ids))}
        with server(url) as remote:
            answer = remote.request("GET", "/jobs/compare", params=params)
        if as_json:
            render.print_json(out, answer)
        else:
            out.print(comparison_tables(answer, out.width))
