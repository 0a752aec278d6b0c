"""`trainserve submit|jobs|show|metrics|cancel|retry|delete`: training jobs from the command
line (`label` is in app/cli/labels.py)."""

import json
from typing import Annotated, Any

import typer

from app.cli import render
from app.cli.connection import DEFAULT_URL, AsJson, JobId, Url, err, key_values, out, server
from app.cli.live import follow_job
from app.cli.remote import FINISHED
from app.weights.ids import WEIGHTS_ID_PREFIX  # a module of constants: nothing heavy loads

PANEL = "Training jobs"

Follow = Annotated[bool, typer.Option("--follow", "-f", help="Follow the job live until it ends.")]
SORTS = ("created_at", "-created_at", "test_accuracy", "-test_accuracy")


def parse_settings(pairs: list[str]) -> dict[str, Any]:
    """KEY=VALUE pairs as job fields; a VALUE that reads as JSON is taken as JSON."""
    fields: dict[str, Any] = {}
    for key, value in key_values(pairs, "--set").items():
        try:
            fields[key] = json.loads(value)
        except json.JSONDecodeError:
            fields[key] = value
    return fields


def parse_init_from(text: str) -> dict[str, Any]:
    """--init-from as the job's init_from: MODEL:VERSION, MODEL@ALIAS or weights:ID."""
    kind, colon, rest = text.partition(":")
    if colon and kind == "weights" and rest.startswith(WEIGHTS_ID_PREFIX):
        return {"weights": rest}
    if colon and rest.isdigit():
        return {"model": kind, "version": int(rest)}
    model, at, alias = text.partition("@")
    if at and model and alias:
        return {"model": model, "alias": alias}
    raise typer.BadParameter(
        f"{text!r} is none of MODEL:VERSION (cifar10:3), MODEL@ALIAS (cifar10@production) "
        "or weights:ID (weights:wt-...)",
        param_hint="--init-from",
    )


def print_queued(job: dict[str, Any], as_json: bool, what: str = "") -> None:
    """A job just queued: its JSON, or its id and status (and why it waits, if it does)."""
    if as_json:
        render.print_json(out, job)
        return
    out.print(f"job {job['id']}{what} {render.status_text(job['status'])}")
    if job["waiting_reason"]:
        err.print(f"[yellow]note:[/] {render.literal(job['waiting_reason'])}")


def register(cli: typer.Typer) -> None:
    """Add the commands for training jobs."""

    @cli.command(rich_help_panel=PANEL)
    def submit(
        url: Url = DEFAULT_URL,
        recipe: Annotated[str | None, typer.Option(help="tutorial, fast or fast94.")] = None,
        epochs: Annotated[int | None, typer.Option(min=1)] = None,
        batch_size: Annotated[int | None, typer.Option(min=1)] = None,
        optimizer: Annotated[str | None, typer.Option(help="sgd or adam.")] = None,
        learning_rate: Annotated[float | None, typer.Option("--learning-rate", "--lr")] = None,
        momentum: float | None = None,
        weight_decay: float | None = None,
        lr_schedule: Annotated[
            str | None, typer.Option(help="constant, onecycle, cosine or warmup_linear.")
        ] = None,
        seed: int | None = None,
        device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
        gpus: Annotated[int | None, typer.Option(min=1)] = None,
        max_train_samples: Annotated[int | None, typer.Option(min=1)] = None,
        max_test_samples: Annotated[int | None, typer.Option(min=1)] = None,
        log_every: Annotated[
            int | None,
            typer.Option(
                min=1,
                help="Mini-batches per loss point (default: about 10 an epoch, 2,000 "
                "for long epochs).",
            ),
        ] = None,
        dataset: Annotated[
            str | None, typer.Option(help="An uploaded dataset's id (default: CIFAR-10).")
        ] = None,
        init_from: Annotated[
            str | None,
            typer.Option(
                metavar="MODEL:VERSION|MODEL@ALIAS|weights:ID",
                help="Fine-tune from a registered version (cifar10:3, cifar10@production) or "
                "an uploaded weights file (weights:wt-...).",
            ),
        ] = None,
        freeze: Annotated[
            str | None,
            typer.Option(help="backbone: train only the classifier head (with --init-from)."),
        ] = None,
        settings: Annotated[
            list[str] | None,
            typer.Option("--set", metavar="KEY=VALUE", help="Any other job field (repeatable)."),
        ] = None,
        name: Annotated[str | None, typer.Option(help="What to call the job.")] = None,
        tags: Annotated[
            list[str] | None,
            typer.Option("--tag", metavar="KEY=VALUE", help="A tag (repeatable)."),
        ] = None,
        notes: Annotated[str | None, typer.Option(help="Anything worth saying about it.")] = None,
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
            "dataset": dataset,
            "init_from": None if init_from is None else parse_init_from(init_from),
            "freeze": freeze,
            "name": name,
            "tags": key_values(tags, "--tag") if tags else None,
            "notes": notes,
        }
        body = {field: value for field, value in options.items() if value is not None}
        body.update(parse_settings(settings or []))
        with server(url) as remote:
            job = remote.request("POST", "/jobs", json=body)
            if not (follow and as_json):  # --follow --json prints the finished job alone
                print_queued(job, as_json)
            if follow:
                follow_job(remote, job, out, as_json)

    @cli.command(rich_help_panel=PANEL)
    def jobs(
        url: Url = DEFAULT_URL,
        status: Annotated[
            list[str] | None, typer.Option(help="Only jobs with this status (repeatable).")
        ] = None,
        name: Annotated[
            str | None, typer.Option(help="Only jobs whose name holds this text (any case).")
        ] = None,
        tags: Annotated[
            list[str] | None,
            typer.Option(
                "--tag",
                metavar="KEY[=VALUE]",
                help="Only jobs with this tag (and value); repeatable: all must match.",
            ),
        ] = None,
        model: Annotated[str | None, typer.Option(help="tutorial_cnn or mlp.")] = None,
        dataset: Annotated[
            str | None, typer.Option(help="cifar10 or an uploaded dataset's id.")
        ] = None,
        sort: Annotated[
            str | None,
            typer.Option(help=f"{', '.join(SORTS[:-1])} or {SORTS[-1]} (default: newest first)."),
        ] = None,
        limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
        as_json: AsJson = False,
    ) -> None:
        """List and find jobs, newest first."""
        filters = {
            "status": status,
            "name": name,
            "tag": [tag.replace("=", ":", 1) for tag in tags or []],
            "model": model,
            "dataset": dataset,
            "sort": sort,
        }
        params: dict[str, Any] = {
            "limit": limit,
            **{key: value for key, value in filters.items() if value},
        }
        with server(url) as remote:
            page = remote.request("GET", "/jobs", params=params)
        if as_json:
            render.print_json(out, page)
        else:
            out.print(render.jobs_table(page["items"], page["total"], out.width))

    @cli.command(rich_help_panel=PANEL)
    def show(
        job_id: JobId, url: Url = DEFAULT_URL, follow: Follow = False, as_json: AsJson = False
    ) -> None:
        """One job: status, progress, result; --follow to watch it to the end."""
        with server(url) as remote:
            job = remote.request("GET", f"/jobs/{job_id}")
            following = follow and job["status"] not in FINISHED
            if as_json and not following:  # --follow --json prints the finished job alone
                render.print_json(out, job)
            elif not as_json:
                out.print(render.job_table(job))
            if following:
                follow_job(remote, job, out, as_json)

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
    def retry(
        job_id: JobId, url: Url = DEFAULT_URL, follow: Follow = False, as_json: AsJson = False
    ) -> None:
        """Run a failed or cancelled job again, as a new job with the same config."""
        with server(url) as remote:
            job = remote.request("POST", f"/jobs/{job_id}/retry")
            if not (follow and as_json):
                print_queued(job, as_json, what=f" (a retry of job {job_id})")
            if follow:
                follow_job(remote, job, out, as_json)

    @cli.command(rich_help_panel=PANEL)
    def delete(job_id: JobId, url: Url = DEFAULT_URL) -> None:
        """Delete a finished job with its model and checkpoints.

        Refused for a job whose model a registered version serves."""
        with server(url) as remote:
            remote.request("DELETE", f"/jobs/{job_id}")
        out.print(f"job {job_id} deleted")
