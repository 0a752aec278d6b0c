"""`trainserve datasets upload|list|show|delete`: uploaded datasets from the command line."""

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.table import Table

from app.cli import render
from app.cli.connection import DEFAULT_URL, AsJson, Url, fail, out, server
from app.cli.remote import Remote
from app.cli.resources import delete_one, print_one, print_page, upload_with_bar

PANEL = "Datasets"
WAIT_POLL_S = 1.0
DECODED = frozenset({"ready", "failed"})

DatasetId = Annotated[str, typer.Argument(help="The dataset's id (ds-...).")]


def datasets_table(datasets: list[dict[str, Any]], total: int, width: int) -> Group:
    rows = (
        (
            found["id"],
            found["kind"],
            render.status_text(found["status"]),
            "-" if found["classes"] is None else str(len(found["classes"])),
            split_sizes(found),
            render.literal(found["name"] + (f": {found['error']}" if found["error"] else "")),
        )
        for found in datasets
    )
    header = ("ID", "KIND", "STATUS", "CLASSES", "TRAIN/TEST", "NAME")
    return render.listing(render.plural(total, "dataset"), header, rows, width, right=("CLASSES",))


def split_sizes(dataset: dict[str, Any]) -> str:
    """Examples in the train and test splits: "4,000/1,000"."""
    counts = dataset["counts"]
    if counts is None:
        return "-"
    train, test = (sum(counts.get(split, {}).values()) for split in ("train", "test"))
    return f"{train:,}/{test:,}"


def dataset_table(dataset: dict[str, Any]) -> Table:
    table = Table(show_header=False, title=f"dataset {dataset['id']}", title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("name", render.literal(dataset["name"])),
        ("kind", dataset["kind"]),
        ("status", render.status_text(dataset["status"])),
        ("uploaded", f"{dataset['upload_bytes']:,} bytes"),
        ("created", dataset["created_at"]),
        ("decoded", dataset["finished_at"] or "-"),
        ("options", render.literal(", ".join(f"{k}={v}" for k, v in dataset["options"].items()))),
    ]
    if dataset["classes"] is not None:
        rows.append(("classes", render.literal(", ".join(dataset["classes"]))))
        rows.append(("train/test", split_sizes(dataset)))
    for name in ("image_size", "test_split", "ignored_files"):
        if dataset[name] is not None:
            rows.append((name.replace("_", " "), str(dataset[name])))
    if dataset["feature_columns"] is not None:
        rows.append(("features", render.literal(", ".join(dataset["feature_columns"]))))
    if dataset["error"] is not None:
        rows.append(("error", render.literal(dataset["error"])))
    for name, value in rows:
        table.add_row(name, value)
    return table


def wait_until_decoded(remote: Remote, dataset: dict[str, Any]) -> dict[str, Any]:
    """Poll the dataset until a worker has decoded it (ready) or given up (failed)."""
    while dataset["status"] not in DECODED:
        time.sleep(WAIT_POLL_S)
        dataset = remote.request("GET", f"/datasets/{dataset['id']}")
    return dataset


def decoded_line(dataset: dict[str, Any]) -> str:
    """ "dataset ds-... ready: 10 classes, 4,000/1,000 train/test images"."""
    noun = "images" if dataset["kind"] == "images" else "rows"
    return (
        f"dataset {dataset['id']} {render.status_text('ready')}: "
        f"{len(dataset['classes'])} classes, {split_sizes(dataset)} train/test {noun}"
    )


def register(cli: typer.Typer) -> None:
    """Add the `datasets` command group."""
    group = typer.Typer(no_args_is_help=True, help="Upload, list, inspect and delete datasets.")
    cli.add_typer(group, name="datasets", rich_help_panel=PANEL)

    @group.command()
    def upload(
        file: Annotated[
            Path,
            typer.Argument(
                exists=True,
                dir_okay=False,
                help="A zip or tar.gz of train/<class>/<image> (optionally test/<class>/), or "
                "a CSV table.",
            ),
        ],
        url: Url = DEFAULT_URL,
        image_size: Annotated[
            int | None, typer.Option(help="Images are resized to this square size (32).")
        ] = None,
        test_fraction: Annotated[
            float | None,
            typer.Option(help="Without test/ folders: the share of each class held out (0.2)."),
        ] = None,
        seed: Annotated[int | None, typer.Option(help="Draws that test set (0).")] = None,
        target: Annotated[
            str | None, typer.Option(help="A CSV's column holding each row's class.")
        ] = None,
        drop: Annotated[
            list[str] | None,
            typer.Option(metavar="COLUMN", help="A CSV's column to leave out (repeatable)."),
        ] = None,
        wait: Annotated[
            bool, typer.Option("--wait", help="Wait until a worker has decoded it.")
        ] = False,
        as_json: AsJson = False,
    ) -> None:
        """Upload a dataset; a worker decodes it once (--wait to wait for that)."""
        options = {
            "image_size": image_size,
            "test_fraction": test_fraction,
            "seed": seed,
            "target": target,
            "drop": ",".join(drop) if drop else None,
        }
        fields = {name: str(value) for name, value in options.items() if value is not None}
        with server(url) as remote:
            dataset = upload_with_bar(remote, file, fields)
            if not as_json:
                out.print(f"dataset {dataset['id']} {render.status_text(dataset['status'])}")
            if wait:
                dataset = wait_until_decoded(remote, dataset)
        if as_json:
            render.print_json(out, dataset)
        if dataset["status"] == "failed":
            fail(f"dataset {dataset['id']} failed: {dataset['error']}")
        if wait and not as_json:
            out.print(decoded_line(dataset))

    @group.command("list")
    def list_datasets(
        url: Url = DEFAULT_URL,
        limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
        as_json: AsJson = False,
    ) -> None:
        """List datasets, newest first."""
        print_page(url, "/datasets", limit, as_json, datasets_table)

    @group.command()
    def show(dataset_id: DatasetId, url: Url = DEFAULT_URL, as_json: AsJson = False) -> None:
        """One dataset: status, classes, images per split, or why it failed."""
        print_one(url, f"/datasets/{dataset_id}", as_json, dataset_table)

    @group.command()
    def delete(dataset_id: DatasetId, url: Url = DEFAULT_URL) -> None:
        """Delete a dataset and its files (refused while a queued or running job uses it)."""
        delete_one(url, f"/datasets/{dataset_id}", f"dataset {dataset_id}")
