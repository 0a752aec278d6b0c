"""`trainserve models|model|register|promote|export`: the model registry from the command line."""

import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from app.cli import render
from app.cli.connection import (
    DEFAULT_URL,
    AsJson,
    JobId,
    Url,
    err,
    fail,
    key_values,
    out,
    server,
)

PANEL = "Registered models"
SHA256_HEADER = "x-content-sha256"
PRODUCTION = "production"

ModelName = Annotated[str, typer.Argument(help="The registered model's name, e.g. cifar10.")]


def register(cli: typer.Typer) -> None:
    """Add the registry's commands."""

    @cli.command(rich_help_panel=PANEL)
    def models(url: Url = DEFAULT_URL, as_json: AsJson = False) -> None:
        """List registered models, their newest version and their aliases."""
        with server(url) as remote:
            found: list[dict[str, Any]] = remote.request("GET", "/models")
        if as_json:
            render.print_json(out, found)
        else:
            out.print(render.models_table(found, out.width))

    @cli.command(rich_help_panel=PANEL)
    def model(name: ModelName, url: Url = DEFAULT_URL, as_json: AsJson = False) -> None:
        """One model: every version with its accuracy and job, and what each alias names."""
        with server(url) as remote:
            found = remote.request("GET", f"/models/{name}")
        if as_json:
            render.print_json(out, found)
        else:
            out.print(render.versions_table(found, out.width))

    @cli.command("register", rich_help_panel=PANEL)
    def register_job(
        job_id: JobId,
        name: ModelName,
        url: Url = DEFAULT_URL,
        description: Annotated[str, typer.Option(help="What this version is.")] = "",
        tags: Annotated[
            list[str] | None,
            typer.Option("--tag", metavar="KEY=VALUE", help="A tag (repeatable)."),
        ] = None,
        as_json: AsJson = False,
    ) -> None:
        """Register a succeeded job's model as the next version of NAME."""
        body = {
            "job_id": job_id,
            "description": description,
            "tags": key_values(tags or [], "--tag"),
        }
        with server(url) as remote:
            version = remote.request("POST", f"/models/{name}/versions", json=body)
        if as_json:
            render.print_json(out, version)
        else:
            out.print(f"job {job_id} is {name} v{version['version']}")

    @cli.command(rich_help_panel=PANEL)
    def promote(
        name: ModelName,
        version: Annotated[int, typer.Argument(min=1, help="The version the alias will name.")],
        url: Url = DEFAULT_URL,
        alias: Annotated[
            str, typer.Option(help="The alias to move (production is what /predict serves).")
        ] = PRODUCTION,
        as_json: AsJson = False,
    ) -> None:
        """Point an alias (production by default) at a version; moving it back is a rollback."""
        with server(url) as remote:
            before = remote.request("GET", f"/models/{name}")["aliases"].get(alias)
            moved = remote.request(
                "PUT", f"/models/{name}/aliases/{alias}", json={"version": version}
            )
        if as_json:
            render.print_json(out, moved)
        elif before == version:
            err.print(f"{name}@{alias} already names v{version}")
        else:
            was = f"v{before}" if before is not None else "nothing"
            out.print(f"{name}@{alias}: {was} -> v{version}")

    @cli.command("export", rich_help_panel=PANEL)
    def export_version(
        name: ModelName,
        version: Annotated[int, typer.Argument(min=1, help="The version to export.")],
        export_format: Annotated[
            Literal["onnx", "torchscript", "safetensors", "card"],
            typer.Option("--format", help="onnx, torchscript, safetensors or card."),
        ] = "onnx",
        output: Annotated[
            Path | None,
            typer.Option("--output", "-o", help="Where to write it (default: the server's name)."),
        ] = None,
        url: Url = DEFAULT_URL,
        as_json: AsJson = False,
    ) -> None:
        """Download a version as ONNX, TorchScript, safetensors or its model card."""
        with server(url) as remote:
            response = remote.download(
                f"/models/{name}/versions/{version}/export", {"format": export_format}
            )
        sha256 = hashlib.sha256(response.content).hexdigest()
        if sha256 != response.headers.get(SHA256_HEADER):
            fail(f"the download's sha256 {sha256} is not the server's")
        target = output or Path(_filename(response.headers.get("content-disposition", "")))
        target.write_bytes(response.content)
        if as_json:
            written = {"path": str(target), "bytes": len(response.content), "sha256": sha256}
            render.print_json(out, written)
        else:
            out.print(f"{target}: {len(response.content):,} bytes, sha256 {sha256}")


def _filename(disposition: str) -> str:
    """The file name a Content-Disposition header gives, reduced to a base name."""
    name = disposition.partition('filename="')[2].partition('"')[0]
    return Path(name).name or "export"
