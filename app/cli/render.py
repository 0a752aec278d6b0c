"""What the command line prints: lists and tables of jobs, their metrics and models."""

import json
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

# Spaces between a list's columns, and the least room its last column keeps on a narrow screen.
COLUMN_GAP = 2
MIN_NOTE_COLUMNS = 12
# The most of a job's name a list shows (less on a narrow terminal).
NAME_COLUMNS = 24
STATUS_STYLES = {
    "queued": "yellow",
    "running": "cyan",
    "succeeded": "green",
    "failed": "red",
    "cancelled": "magenta",
}


def percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{100 * fraction:.2f}%"


def literal(text: str) -> str:
    """Text from the server, shown as it is (square brackets are not style markup)."""
    return escape(text)


def status_text(status: str) -> str:
    return f"[{STATUS_STYLES.get(status, 'white')}]{status}[/]"


def progress_text(job: dict[str, Any]) -> str:
    progress = job["progress"]
    if progress["epoch"] == 0:
        return "-"
    steps = progress["steps_per_epoch"]
    return f"epoch {progress['epoch']}/{progress['epochs']}, step {progress['step']}/{steps or '?'}"


def progress_short(job: dict[str, Any]) -> str:
    """Progress in a list's column: "epoch 1/2, 40%"."""
    progress = job["progress"]
    if progress["epoch"] == 0:
        return "-"
    steps = progress["steps_per_epoch"]
    done = f", {100 * progress['step'] // steps}%" if steps else ""
    return f"epoch {progress['epoch']}/{progress['epochs']}{done}"


def answered_by(answer: dict[str, Any]) -> str:
    """Which model gave a prediction: "cifar10 v2, job 12", or "job 12"."""
    job = f"job {answer['job_id']}"
    return job if answer["model"] is None else f"{answer['model']} v{answer['version']}, {job}"


def print_json(console: Console, value: object) -> None:
    console.print_json(json.dumps(value))


def listing(
    title: str,
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    width: int,
    right: Collection[str] = (),
    shrink: tuple[str, int] | None = None,
) -> Group:
    """A list as `docker ps` prints one: a header, one line per item, no borders; the last
    column (free text, such as an error) is cut with "…" so that a line fits in `width`.
    `shrink` = (column, most): a column of free text too (a name) cut to `most` characters, and
    to fewer where the last column would keep less than its least room."""
    cells = [[Text.from_markup(cell) for cell in row] for row in rows]
    widths = [
        max([len(name)] + [row[index].cell_len for row in cells])
        for index, name in enumerate(header[:-1])
    ]
    gaps = COLUMN_GAP * (len(header) - 1)
    if shrink is not None:
        column, most = shrink
        index = header.index(column)
        others = sum(widths) - widths[index] + gaps
        widths[index] = max(
            len(column), min(widths[index], most, width - others - MIN_NOTE_COLUMNS)
        )
        for row in cells:
            row[index].truncate(widths[index], overflow="ellipsis")
    room = max(MIN_NOTE_COLUMNS, width - sum(widths) - gaps)
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in header:
        table.add_column(name, justify="right" if name in right else "left", no_wrap=True)
    for row in cells:
        row[-1].truncate(room, overflow="ellipsis")
        table.add_row(*row)
    # The title on its own line: as a table's title it would be padded to the table's width.
    return Group(Text(title), table)


def timestamp(iso: str) -> str:
    """An ISO timestamp to the minute: "2026-11-30 01:52"."""
    return iso[:16].replace("T", " ")


def tags_text(tags: dict[str, str]) -> str:
    """Tags as the command line takes them: "sweep=lr, size=40"."""
    return ", ".join(f"{key}={value}" for key, value in tags.items())


def jobs_table(jobs: Iterable[dict[str, Any]], total: int, width: int) -> Group:
    rows = (
        (
            str(job["id"]),
            literal(job["name"] or "-"),
            status_text(job["status"]),
            progress_short(job),
            percent(job["test_accuracy"]),
            timestamp(job["created_at"]),
            literal(job["error"] or job["waiting_reason"] or ""),
        )
        for job in jobs
    )
    # No device column (`show` has it): the name takes its room.
    header = ("ID", "NAME", "STATUS", "PROGRESS", "ACCURACY", "CREATED", "NOTE")
    right = ("ID", "ACCURACY")
    return listing(
        plural(total, "job"), header, rows, width, right=right, shrink=("NAME", NAME_COLUMNS)
    )


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def models_table(models: list[dict[str, Any]], width: int) -> Group:
    rows = (
        (
            found["name"],
            "-" if found["latest_version"] is None else f"v{found['latest_version']}",
            ", ".join(f"{alias} -> v{v}" for alias, v in found["aliases"].items()) or "-",
            literal(found["description"]),
        )
        for found in models
    )
    header = ("NAME", "LATEST", "ALIASES", "DESCRIPTION")
    return listing(plural(len(models), "model"), header, rows, width)


def versions_table(model: dict[str, Any], width: int) -> Group:
    rows = []
    for version in model["versions"]:
        lineage = version["lineage"]
        rows.append(
            (
                f"v{version['version']}",
                ", ".join(version["aliases"]) or "-",
                percent(version["test_accuracy"]),
                str(version["job_id"]),
                lineage["dataset"]["id"],
                literal(version["promotion"] or version["description"]),
            )
        )
    header = ("VERSION", "ALIASES", "ACCURACY", "JOB", "DATASET", "NOTE")
    right = ("VERSION", "ACCURACY", "JOB")
    return listing(f"model {model['name']}", header, rows, width, right=right)


def job_table(job: dict[str, Any]) -> Table:
    table = Table(show_header=False, title=f"job {job['id']}", title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    labels = [("name", job["name"]), ("tags", tags_text(job["tags"])), ("notes", job["notes"])]
    rows = [(name, literal(value)) for name, value in labels if value]
    rows += [
        ("status", status_text(job["status"])),
        ("progress", progress_text(job)),
        ("test accuracy", percent(job["test_accuracy"])),
        ("device", job["device"] or "-"),
        ("attempts", f"{job['attempts']} of {job['max_attempts']}"),
        ("created", job["created_at"]),
        ("started", job["started_at"] or "-"),
        ("finished", job["finished_at"] or "-"),
        ("config", literal(json.dumps(job["config"], sort_keys=True))),
    ]
    for name in ("error", "waiting_reason", "retry_of"):
        if job[name] is not None:
            rows.append((name.replace("_", " "), literal(str(job[name]))))
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
