"""`trainserve workers`: the live workers, what each offers and what it is training."""

from typing import Any

import typer
from rich.console import Group

from app.cli import render
from app.cli.connection import DEFAULT_URL, AsJson, Url, out, server

PANEL = "Training jobs"


def gpus_text(gpus: list[dict[str, Any]]) -> str:
    """ "2x NVIDIA H200 (143,771 MiB)", one entry per kind of GPU; "-" without one."""
    kinds: dict[tuple[str, int], int] = {}
    for gpu in gpus:
        kinds[(gpu["name"], gpu["memory_mb"])] = kinds.get((gpu["name"], gpu["memory_mb"]), 0) + 1
    return ", ".join(f"{count}x {name} ({memory:,} MiB)" for (name, memory), count in kinds.items())


def workers_table(workers: list[dict[str, Any]], total: int, width: int) -> Group:
    rows = (
        (
            worker["id"],
            str(worker["cpus"]),
            "-" if worker["current_job_id"] is None else str(worker["current_job_id"]),
            render.timestamp(worker["started_at"]),
            render.literal(gpus_text(worker["gpus"]) or "-"),
        )
        for worker in workers
    )
    header = ("ID", "CPUS", "JOB", "STARTED", "GPUS")
    return render.listing(
        render.plural(total, "live worker"), header, rows, width, right=("CPUS", "JOB")
    )


def register(cli: typer.Typer) -> None:
    """Add the `workers` command."""

    @cli.command(rich_help_panel=PANEL)
    def workers(url: Url = DEFAULT_URL, as_json: AsJson = False) -> None:
        """The live workers: host, CPUs, GPUs and the job each is training."""
        with server(url) as remote:
            page = remote.request("GET", "/workers")
        if as_json:
            render.print_json(out, page)
        else:
            out.print(workers_table(page["items"], page["total"], out.width))
