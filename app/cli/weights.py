"""`trainserve weights upload|list|show|delete`: weights files to fine-tune from, from the command
line (a job names one with `trainserve submit --init-from weights:<id>`)."""

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.table import Table

from app.cli import render
from app.cli.connection import DEFAULT_URL, AsJson, Url, out, server
from app.cli.resources import delete_one, print_one, print_page, upload_with_bar

# Listed in --help beside the datasets: both are files uploaded to train on.
UPLOADS_PANEL = "Datasets"
# Tensors `weights show` lists; --json gives them all.
TENSORS_SHOWN = 20

WeightsId = Annotated[str, typer.Argument(help="The weights file's id (wt-...).")]


def weights_table(files: list[dict[str, Any]], total: int, width: int) -> Group:
    rows = (
        (
            found["id"],
            found["format"],
            f"{found['tensor_count']:,}",
            f"{found['parameters']:,}",
            f"{found['size_bytes']:,}",
            render.literal(found["filename"]),
        )
        for found in files
    )
    header = ("ID", "FORMAT", "TENSORS", "PARAMETERS", "BYTES", "NAME")
    right = ("TENSORS", "PARAMETERS", "BYTES")
    return render.listing(render.plural(total, "weights file"), header, rows, width, right=right)


def weights_detail_table(weights: dict[str, Any]) -> Table:
    table = Table(show_header=False, title=f"weights {weights['id']}", title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")  # a sha256 is read whole, on two lines if need be
    tensors: dict[str, list[int]] = weights["tensors"]
    rows = [
        ("name", render.literal(weights["filename"])),
        ("format", weights["format"]),
        ("size", f"{weights['size_bytes']:,} bytes"),
        ("sha256", weights["sha256"]),
        ("uploaded", weights["created_at"]),
        ("parameters", f"{weights['parameters']:,} in {len(tensors):,} tensors"),
    ]
    for name, shape in list(tensors.items())[:TENSORS_SHOWN]:
        rows.append((render.literal(name), "x".join(map(str, shape)) or "scalar"))
    if len(tensors) > TENSORS_SHOWN:
        rows.append(("...", f"{len(tensors) - TENSORS_SHOWN:,} more (--json lists them all)"))
    for name, value in rows:
        table.add_row(name, value)
    return table


def register(cli: typer.Typer) -> None:
    """Add the `weights` command group."""
    group = typer.Typer(
        no_args_is_help=True, help="Upload, list, inspect and delete weights to fine-tune from."
    )
    cli.add_typer(group, name="weights", rich_help_panel=UPLOADS_PANEL)

    @group.command()
    def upload(
        file: Annotated[
            Path,
            typer.Argument(
                exists=True,
                dir_okay=False,
                help="A safetensors file, or a PyTorch state_dict saved with torch.save.",
            ),
        ],
        url: Url = DEFAULT_URL,
        as_json: AsJson = False,
    ) -> None:
        """Upload a weights file; a job starts from it with --init-from weights:<id>."""
        with server(url) as remote:
            weights = upload_with_bar(remote, file, {}, path="/weights")
        if as_json:
            render.print_json(out, weights)
        else:
            out.print(
                f"weights {weights['id']} uploaded: {weights['tensor_count']:,} tensors, "
                f"{weights['parameters']:,} parameters ({weights['format']})"
            )

    @group.command("list")
    def list_weights(
        url: Url = DEFAULT_URL,
        limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
        as_json: AsJson = False,
    ) -> None:
        """List weights files, newest first."""
        print_page(url, "/weights", limit, as_json, weights_table)

    @group.command()
    def show(weights_id: WeightsId, url: Url = DEFAULT_URL, as_json: AsJson = False) -> None:
        """One weights file: its format, size, sha256 and its tensors' shapes."""
        print_one(url, f"/weights/{weights_id}", as_json, weights_detail_table)

    @group.command()
    def delete(weights_id: WeightsId, url: Url = DEFAULT_URL) -> None:
        """Delete a weights file (refused while a queued or running job starts from it)."""
        delete_one(url, f"/weights/{weights_id}", f"weights {weights_id}")
