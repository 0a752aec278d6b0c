"""A job followed live: a progress bar in a terminal, plain lines anywhere else."""

from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from app.cli import render
from app.cli.connection import err
from app.cli.remote import FINISHED, JobEvent, Remote

# Below this many columns the bar drops the step and the elapsed time and shrinks, so that the
# line never needs truncating in an 80-column terminal.
WIDE_TERMINAL_COLUMNS = 110
NARROW_BAR_WIDTH = 12


def bar_columns(width: int) -> list[ProgressColumn]:
    """The progress bar's columns for a terminal `width` characters wide."""
    head = [TextColumn("job {task.fields[job]} {task.fields[status]}")]
    if width >= WIDE_TERMINAL_COLUMNS:
        return [
            *head,
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            TextColumn("step {task.fields[step]}"),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
        ]
    return [
        *head,
        BarColumn(bar_width=NARROW_BAR_WIDTH),
        MofNCompleteColumn(),
        TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
        TextColumn("loss {task.fields[loss]}"),
        TimeRemainingColumn(compact=True),
        TextColumn("left"),
    ]


class LiveJob:
    """Follows a job's events: in a terminal a bar with epoch, step, loss and time left; in a
    log or a pipe one line per loss point and epoch, as the tutorial prints them."""

    def __init__(self, console: Console, job: dict[str, Any]) -> None:
        self.console = console
        self.job_id = job["id"]
        self.epochs: int = job["config"]["epochs"]
        self.steps_per_epoch: int | None = job["progress"]["steps_per_epoch"]
        self.status: str = job["status"]
        self.final: dict[str, Any] | None = None
        self.bar: Progress | None = None
        if console.is_terminal:
            self.bar = Progress(*bar_columns(console.width), console=console)
            self.task: TaskID = self.bar.add_task(
                "training",
                total=None,
                job=self.job_id,
                status=render.status_text(self.status),
                epoch=0,
                epochs=self.epochs,
                step=0,
                loss="-",
            )

    def __enter__(self) -> "LiveJob":
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def show(self, event: JobEvent) -> None:
        """Move on by one event."""
        data = event.data
        if event.kind == "status":
            self._status(data)
        elif event.kind == "started":
            self.steps_per_epoch = data["steps_per_epoch"]
            self._update(total=self.epochs * data["steps_per_epoch"])
        elif event.kind in ("progress", "loss", "rewound"):
            self._move(data["epoch"], data["step"])
            if event.kind == "loss":
                self._update(loss=f"{data['loss']:.3f}")
                if self.bar is None:
                    self._line(
                        f"epoch {data['epoch']}, step {data['step']}/"
                        f"{self.steps_per_epoch or '?'}: loss {data['loss']:.3f}"
                    )
            elif event.kind == "rewound":
                self._line(
                    f"job {self.job_id} resumed from its checkpoint at epoch {data['epoch']}, "
                    f"step {data['step']}"
                )
        elif event.kind == "epoch":
            self._move(data["epoch"], self.steps_per_epoch or 0)
            held_out = data.get("validation_loss")
            validation = "" if held_out is None else f"validation loss {held_out:.3f}, "
            self._line(
                f"epoch {data['epoch']}: train loss {data['train_loss']:.3f}, {validation}"
                f"test loss {data['test_loss']:.3f}, "
                f"test accuracy {render.percent(data['test_accuracy'])}"
            )
        elif event.kind == "cancel_requested":
            self._line(f"job {self.job_id}: cancel requested")

    def _status(self, data: dict[str, Any]) -> None:
        self.status = data["status"]
        self._update(status=render.status_text(self.status))
        if self.status in FINISHED:
            self.final = data
        elif data.get("reason"):
            self._line(f"job {self.job_id} requeued: {render.literal(data['reason'])}")
        elif self.status == "running" and self.bar is None:
            self._line(f"job {self.job_id} running (attempt {data.get('attempt', 1)})")

    def _line(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def _update(self, **fields: Any) -> None:
        if self.bar is not None:
            self.bar.update(self.task, **fields)

    def _move(self, epoch: int, step: int) -> None:
        done = (epoch - 1) * (self.steps_per_epoch or 0) + step if epoch else 0
        self._update(completed=done, epoch=epoch, step=step)


def follow_job(remote: Remote, job: dict[str, Any], out: Console, as_json: bool) -> None:
    """Show the job's progress until it ends, then its results (with --json, the finished job
    only); exit 1 unless it succeeded."""
    live = LiveJob(Console(stderr=True, quiet=True) if as_json else out, job)
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
    if as_json:
        render.print_json(out, remote.request("GET", f"/jobs/{job['id']}"))
    elif status == "succeeded":
        if final.get("best_epoch"):
            out.print(f"early stopping kept the weights of epoch {final['best_epoch']}")
        out.print(render.per_class_table(final["per_class_accuracy"], final["test_accuracy"]))
    if status != "succeeded":
        reason = f": {render.literal(final['error'])}" if final.get("error") else ""
        err.print(f"[red]job {job['id']} {status}[/]{reason}")
        raise typer.Exit(1)
