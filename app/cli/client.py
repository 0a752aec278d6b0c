"""`trainserve submit|jobs|show|metrics|cancel|predict`: the server, from the command line."""

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from app.cli import render
from app.cli.remote import DEFAULT_URL, FINISHED, Remote, ServerError

PANEL = "Talk to a server"
API_KEY_VARIABLE = "TRAINSERVE_API_KEY"

Url = Annotated[
    str,
    typer.Option(
        "--url", envvar="TRAINSERVE_URL", help="The server (its API key: $TRAINSERVE_API_KEY)."
    ),
]
JobId = Annotated[int, typer.Argument(min=1, help="The job's id.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the server's JSON as it is.")]
Follow = Annotated[bool, typer.Option("--follow", "-f", help="Follow the job live until it ends.")]

out = Console(highlight=False)
# An error is one line, however narrow the terminal.
err = Console(stderr=True, highlight=False, soft_wrap=True)


@contextmanager
def server(url: str) -> Iterator[Remote]:
    """The server at `url`; a ServerError inside ends the command with its line and exit 1."""
    remote = Remote(url, os.environ.get(API_KEY_VARIABLE) or None)
    try:
        yield remote
    except ServerError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    finally:
        remote.close()


def parse_settings(pairs: list[str]) -> dict[str, Any]:
    """KEY=VALUE pairs as job fields; a VALUE that reads as JSON is taken as JSON."""
    fields: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--set")
        try:
            fields[key] = json.loads(value)
        except json.JSONDecodeError:
            fields[key] = value
    return fields


def follow_job(remote: Remote, job: dict[str, Any]) -> None:
    """Show the job's progress until it ends, then its results; exit 1 unless it succeeded."""
    live = render.LiveJob(out, job)
    try:
        with live:
            for event in remote.follow(job["id"]):
                live.show(event)
    except KeyboardInterrupt:
        err.print(
            f"stopped following; job {job['id']} goes on (trainserve show {job['id']} --follow)"
        )
        raise typer.Exit(130) from None
    final = live.final or {}
    status = final.get("status", live.status)
    if status == "succeeded":
        if final.get("best_epoch"):
            out.print(f"early stopping kept the weights of epoch {final['best_epoch']}")
        out.print(render.per_class_table(final["per_class_accuracy"], final["test_accuracy"]))
        return
    reason = f": {final['error']}" if final.get("error") else ""
    err.print(f"[red]job {job['id']} {status}[/]{reason}")
    raise typer.Exit(1)


def register(cli: typer.Typer) -> None:
    """Add the commands that talk to a running server."""

    @cli.command(rich_help_panel=PANEL)
    def submit(
        url: Url = DEFAULT_URL,
        recipe: Annotated[str | None, typer.Option(help="tutorial or fast.")] = None,
        epochs: Annotated[int | None, typer.Option(min=1)] = None,
        batch_size: Annotated[int | None, typer.Option(min=1)] = None,
        optimizer: Annotated[str | None, typer.Option(help="sgd or adam.")] = None,
        learning_rate: Annotated[float | None, typer.Option("--learning-rate", "--lr")] = None,
        momentum: float | None = None,
        weight_decay: float | None = None,
        lr_schedule: Annotated[
            str | None, typer.Option(help="constant, onecycle or cosine.")
        ] = None,
        seed: int | None = None,
        device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
        gpus: Annotated[int | None, typer.Option(min=1)] = None,
        max_train_samples: Annotated[int | None, typer.Option(min=1)] = None,
        max_test_samples: Annotated[int | None, typer.Option(min=1)] = None,
        log_every: Annotated[
            int | None, typer.Option(min=1, help="Mini-batches per loss point.")
        ] = None,
        settings: Annotated[
            list[str] | None,
            typer.Option("--set", metavar="KEY=VALUE", help="Any other job field (repeatable)."),
        ] = None,
        follow: Follow = False,
        as_json: AsJson = False,
    ) -> None:
        """Submit a training job (the defaults are the CIFAR-10 tutorial)."""
        options = {
            "recipe": recipe,
            "epochs": epochs,
            "batch_size": batch_size,
            "optimizer": optimizer,
            "learning_rate": learning_rate,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "lr_schedule": lr_schedule,
            "seed": seed,
            "device": device,
            "gpus": gpus,
            "max_train_samples": max_train_samples,
            "max_test_samples": max_test_samples,
            "log_every": log_every,
        }
        body = {field: value for field, value in options.items() if value is not None}
        body.update(parse_settings(settings or []))
        with server(url) as remote:
            job = remote.request("POST", "/jobs", json=body)
            if as_json:
                render.print_json(out, job)
            else:
                out.print(f"job {job['id']} {render.status_text(job['status'])}")
                if job["waiting_reason"]:
                    err.print(f"[yellow]note:[/] {job['waiting_reason']}")
            if follow:
                follow_job(remote, job)

    @cli.command(rich_help_panel=PANEL)
    def jobs(
        url: Url = DEFAULT_URL,
        status: Annotated[str | None, typer.Option(help="Only jobs with this status.")] = None,
        limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
        as_json: AsJson = False,
    ) -> None:
        """List jobs, newest first."""
        params: dict[str, Any] = {"limit": limit, **({"status": status} if status else {})}
        with server(url) as remote:
            page = remote.request("GET", "/jobs", params=params)
        if as_json:
            render.print_json(out, page)
        else:
            out.print(render.jobs_table(page["items"], page["total"]))

    @cli.command(rich_help_panel=PANEL)
    def show(
        job_id: JobId, url: Url = DEFAULT_URL, follow: Follow = False, as_json: AsJson = False
    ) -> None:
        """One job: status, progress, result; --follow to watch it to the end."""
        with server(url) as remote:
            job = remote.request("GET", f"/jobs/{job_id}")
            if as_json:
                render.print_json(out, job)
            else:
                out.print(render.job_table(job))
            if follow and job["status"] not in FINISHED:
                follow_job(remote, job)

    @cli.command(rich_help_panel=PANEL)
    def metrics(job_id: JobId, url: Url = DEFAULT_URL, as_json: AsJson = False) -> None:
        """A job's loss history, epochs and per-class test accuracy."""
        with server(url) as remote:
            found = remote.request("GET", f"/jobs/{job_id}/metrics")
        if as_json:
            render.print_json(out, found)
            return
        out.print(render.loss_table(found["loss_history"]))
        out.print(render.epochs_table(found["epochs"], found["best_epoch"]))
        if found["per_class_accuracy"]:
            out.print(render.per_class_table(found["per_class_accuracy"], found["test_accuracy"]))
        else:
            out.print(f"no test results yet (the job is {found['status']})")

    @cli.command(rich_help_panel=PANEL)
    def cancel(job_id: JobId, url: Url = DEFAULT_URL) -> None:
        """Cancel a queued job now, or ask a running one's worker to stop it."""
        with server(url) as remote:
            job = remote.request("POST", f"/jobs/{job_id}/cancel")
        if job["status"] == "cancelled":
            out.print(f"job {job_id} {render.status_text('cancelled')}")
        else:
            out.print(f"job {job_id}: cancel requested; its worker stops it within seconds")

    @cli.command(rich_help_panel=PANEL)
    def predict(
        images: Annotated[
            list[Path], typer.Argument(exists=True, dir_okay=False, help="Image files.")
        ],
        url: Url = DEFAULT_URL,
        model: Annotated[
            str | None,
            typer.Option(help="The registered model (default: the server's default model)."),
        ] = None,
        alias: Annotated[
            str | None, typer.Option(help="The model's alias to use (default: production).")
        ] = None,
        version: Annotated[int | None, typer.Option(min=1, help="The model's version.")] = None,
        job: Annotated[
            int | None, typer.Option(min=1, help="The job whose model answers, instead.")
        ] = None,
        top: Annotated[int, typer.Option(min=1, help="Classes to show for each image.")] = 1,
        as_json: AsJson = False,
    ) -> None:
        """Classify images with a registered model (by default the server's default model at
        production), or with a job's model."""
        params = {"model": model, "alias": alias, "version": version, "job_id": job, "top_k": top}
        failed = 0
        answers: list[dict[str, Any]] = []
        with server(url) as remote:
            for image in images:
                try:
                    answer = remote.predict(image, params)
                except ServerError as exc:
                    err.print(f"[red]error:[/] {image}: {exc}")
                    failed += 1
                    continue
                answers.append({"image": str(image), **answer})
                if not as_json:
                    ranked = ", ".join(
                        f"{top_class['label']} {render.percent(top_class['probability'])}"
                        for top_class in answer["top_k"]
                    )
                    out.print(f"{image}: {ranked} ({render.answered_by(answer)})")
        if as_json:
            render.print_json(out, answers)
        if failed:
            raise typer.Exit(1)
