"""What the command line prints: tables of jobs and metrics, and a job's live progress bar."""

import json
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from app.cli.remote import FINISHED, JobEvent

STATUS_STYLES = {
    "queued": "yellow",
    "running": "cyan",
    "succeeded": "green",
    "failed": "red",
    "cancelled": "magenta",
}


def percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{100 * fraction:.2f}%"


def status_text(status: str) -> str:
    return f"[{STATUS_STYLES.get(status, 'white')}]{status}[/]"


def progress_text(job: dict[str, Any]) -> str:
    progress = job["progress"]
    if progress["epoch"] == 0:
        return "-"
    steps = progress["steps_per_epoch"]
    return f"epoch {progress['epoch']}/{progress['epochs']}, step {progress['step']}/{steps or '?'}"


def answered_by(answer: dict[str, Any]) -> str:
    """Which model gave a prediction: "cifar10 v2, job 12", or "job 12"."""
    job = f"job {answer['job_id']}"
    return job if answer["model"] is None else f"{answer['model']} v{answer['version']}, {job}"


def print_json(console: Console, value: object) -> None:
    console.print_json(json.dumps(value))


def jobs_table(jobs: Iterable[dict[str, Any]], total: int) -> Table:
    table = Table(title=f"{total} job{'s' * (total != 1)}", title_justify="left")
    for column in ("ID", "STATUS", "PROGRESS", "ACCURACY", "DEVICE", "CREATED", "NOTE"):
        table.add_column(column, justify="right" if column in ("ID", "ACCURACY") else "left")
    for job in jobs:
        table.add_row(
            str(job["id"]),
            status_text(job["status"]),
            progress_text(job),
            percent(job["test_accuracy"]),
            job["device"] or "-",
            job["created_at"][:19].replace("T", " "),
            job["error"] or job["waiting_reason"] or "",
        )
    return table


def models_table(models: list[dict[str, Any]]) -> Table:
    count = len(models)
    table = Table(title=f"{count} model{'s' * (count != 1)}", title_justify="left")
    for column in ("NAME", "LATEST", "ALIASES", "DESCRIPTION"):
        table.add_column(column)
    for found in models:
        latest = found["latest_version"]
        table.add_row(
            found["name"],
            "-" if latest is None else f"v{latest}",
            ", ".join(f"{alias} -> v{v}" for alias, v in found["aliases"].items()) or "-",
            found["description"],
        )
    return table


def versions_table(model: dict[str, Any]) -> Table:
    table = Table(title=f"model {model['name']}", title_justify="left")
    for column in ("VERSION", "ALIASES", "ACCURACY", "JOB", "DATASET", "CREATED", "NOTE"):
        right = column in ("VERSION", "ACCURACY", "JOB")
        table.add_column(column, justify="right" if right else "left")
    for version in model["versions"]:
        lineage = version["lineage"]
        table.add_row(
            f"v{version['version']}",
            ", ".join(version["aliases"]) or "-",
            percent(version["test_accuracy"]),
            str(version["job_id"]),
            f"{lineage['dataset']['id']} ({lineage.get('test_images') or '?'} test images)",
            version["created_at"][:19].replace("T", " "),
            version["promotion"] or version["description"],
        )
    return table


def job_table(job: dict[str, Any]) -> Table:
    table = Table(show_header=False, title=f"job {job['id']}", title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("status", status_text(job["status"])),
        ("progress", progress_text(job)),
        ("test accuracy", percent(job["test_accuracy"])),
        ("device", job["device"] or "-"),
        ("attempts", f"{job['attempts']} of {job['max_attempts']}"),
        ("created", job["created_at"]),
        ("started", job["started_at"] or "-"),
        ("finished", job["finished_at"] or "-"),
        ("config", json.dumps(job["config"], sort_keys=True)),
    ]
    for name in ("error", "waiting_reason", "retry_of"):
        if job[name] is not None:
            rows.append((name.replace("_", " "), str(job[name])))
    if job["cancel_requested"] and job["status"] == "running":
        rows.append(("cancel", "requested"))
    for name, value in rows:
        table.add_row(name, value)
    return table


def epochs_table(epochs: list[dict[str, Any]], best_epoch: int | None = None) -> Table:
    validated = any(epoch.get("validation_loss") is not None for epoch in epochs)
    kept = "" if best_epoch is None else f" (early stopping kept epoch {best_epoch})"
    table = Table(title="epochs" + kept, title_justify="left")
    columns = ["EPOCH", "TRAIN LOSS", "TEST LOSS", "TEST ACCURACY", "TIME"]
    if validated:
        columns[2:2] = ["VAL LOSS", "VAL ACCURACY"]
    for column in columns:
        table.add_column(column, justify="right")
    for epoch in epochs:
        row = [str(epoch["epoch"]), f"{epoch['train_loss']:.3f}"]
        if validated:
            held_out = epoch.get("validation_loss")
            row += (
                ["-", "-"]
                if held_out is None
                else [f"{held_out:.3f}", percent(epoch["validation_accuracy"])]
            )
        elapsed = epoch["elapsed_s"]
        row += [
            f"{epoch['test_loss']:.3f}",
            percent(epoch["test_accuracy"]),
            "-" if elapsed is None else f"{elapsed:.1f}s",
        ]
        table.add_row(*row)
    return table


def loss_table(points: list[dict[str, Any]]) -> Table:
    table = Table(title="training loss", title_justify="left")
    for column in ("EPOCH", "STEP", "LOSS"):
        table.add_column(column, justify="right")
    for point in points:
        table.add_row(str(point["epoch"]), str(point["step"]), f"{point['loss']:.3f}")
    return table


def per_class_table(per_class: dict[str, float], overall: float | None) -> Table:
    """Per-class test accuracy, as the tutorial prints it, with a bar for each class."""
    table = Table(title=f"test accuracy {percent(overall)}", title_justify="left")
    table.add_column("CLASS")
    table.add_column("ACCURACY", justify="right")
    table.add_column("")
    for name, accuracy in per_class.items():
        table.add_row(name, percent(accuracy), "█" * round(20 * accuracy))
    return table


class LiveJob:
    """A progress bar that follows a job's events: epoch, step, loss and time left."""

    def __init__(self, console: Console, job: dict[str, Any]) -> None:
        self.job_id = job["id"]
        self.epochs: int = job["config"]["epochs"]
        self.steps_per_epoch: int | None = job["progress"]["steps_per_epoch"]
        self.status: str = job["status"]
        self.final: dict[str, Any] | None = None
        self.bar = Progress(
            TextColumn("job {task.fields[job]}"),
            TextColumn("{task.fields[status]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            TextColumn("step {task.fields[step]}"),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=console,
        )
        self.task: TaskID = self.bar.add_task(
            "training",
            total=None,
            job=self.job_id,
            status=status_text(self.status),
            epoch=0,
            epochs=self.epochs,
            step=0,
            loss="-",
        )

    def __enter__(self) -> "LiveJob":
        self.bar.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.bar.stop()

    def show(self, event: JobEvent) -> None:
        """Move the bar on by one event."""
        data = event.data
        if event.kind == "status":
            self.status = data["status"]
            self.bar.update(self.task, status=status_text(self.status))
            if data["status"] in FINISHED:
                self.final = data
            elif data.get("reason"):
                self.bar.console.print(f"job {self.job_id} requeued: {data['reason']}")
        elif event.kind == "started":
            self.steps_per_epoch = data["steps_per_epoch"]
            self.bar.update(self.task, total=self.epochs * data["steps_per_epoch"])
        elif event.kind in ("progress", "loss", "rewound"):
            self._move(data["epoch"], data["step"])
            if event.kind == "loss":
                self.bar.update(self.task, loss=f"{data['loss']:.3f}")
        elif event.kind == "epoch":
            self._move(data["epoch"], self.steps_per_epoch or 0)
            held_out = data.get("validation_loss")
            validation = "" if held_out is None else f"validation loss {held_out:.3f}, "
            self.bar.console.print(
                f"epoch {data['epoch']}: train loss {data['train_loss']:.3f}, {validation}"
                f"test loss {data['test_loss']:.3f}, "
                f"test accuracy {percent(data['test_accuracy'])}"
            )
        elif event.kind == "cancel_requested":
            self.bar.console.print(f"job {self.job_id}: cancel requested")

    def _move(self, epoch: int, step: int) -> None:
        done = (epoch - 1) * (self.steps_per_epoch or 0) + step if epoch else 0
        self.bar.update(self.task, completed=done, epoch=epoch, step=step)
