"""What `trainserve compare` prints: the jobs as columns, each section a table (final metrics,
the config fields that differ, per-class accuracy with the best marked), all with the same
column widths. Jobs that do not fit the width side by side go on to further tables below."""

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from app.cli.render import COLUMN_GAP, literal, percent, plural, status_text

# A job's column and the labels' column are cut with "…" beyond these; the rest of a long value
# is in `--json`.
JOB_COLUMN_MAX = 18
LABEL_COLUMN_MAX = 24
# Marks the best job of a class: a star reads in a log or a pipe too, and is bold in a terminal.
BEST = "[bold]*{}[/]"

Row = tuple[str, list[str]]


def _number(value: float | None, spec: str, unit: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{unit}"


def _metric_rows(jobs: list[dict[str, Any]]) -> list[Row]:
    def row(label: str, cell: Any) -> Row:
        return label, [cell(job) for job in jobs]

    return [
        row("status", lambda job: status_text(job["status"])),
        row("epochs done", lambda job: str(job["epochs_done"])),
        row("test accuracy", lambda job: percent(job["test_accuracy"])),
        row("best epoch", lambda job: _number(job["best_epoch"], "d")),
        row("test loss", lambda job: _number(job["test_loss"], ".3f")),
        row("images/s", lambda job: _number(job["images_per_s"], ",.0f")),
        row("training time", lambda job: _number(job["training_s"], ".1f", "s")),
    ]


def _config_value(value: object) -> str:
    return literal(value if isinstance(value, str) else json.dumps(value))


def _config_rows(differing: dict[str, list[object]]) -> list[Row]:
    return [
        (literal(name), [_config_value(v) for v in values]) for name, values in differing.items()
    ]


def _class_rows(per_class: dict[str, dict[str, Any]]) -> list[Row]:
    rows = []
    for name, compared in per_class.items():
        cells = [percent(value) for value in compared["accuracy"]]
        for index in compared["best"]:
            cells[index] = BEST.format(cells[index])
        rows.append((literal(name), cells))
    return rows


def _config_title(config: dict[str, dict[str, Any]]) -> str:
    differing, same = len(config["differing"]), len(config["same"])
    if not differing:
        return f"config: all {plural(same, 'field')} the same"
    verb = "differs" if differing == 1 else "differ"
    return f"config: {plural(differing, 'field')} {verb}, {same} the same"


def _cell_len(markup: str) -> int:
    return Text.from_markup(markup).cell_len


def _column_groups(widths: Sequence[int], room: int) -> list[list[int]]:
    """The jobs' indexes in groups whose columns fit `room` side by side (at least one each)."""
    groups: list[list[int]] = [[]]
    used = 0
    for index, width in enumerate(widths):
        needed = COLUMN_GAP + width
        if groups[-1] and used + needed > room:
            groups.append([])
            used = 0
        groups[-1].append(index)
        used += needed
    return groups


def _table(
    corner: str, headers: list[str], rows: list[Row], label_width: int, widths: list[int]
) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column(corner, width=label_width, no_wrap=True, overflow="ellipsis")
    for header, width in zip(headers, widths, strict=True):
        table.add_column(header, justify="right", width=width, no_wrap=True, overflow="ellipsis")
    for label, cells in rows:
        table.add_row(label, *cells)
    return table


def comparison_tables(answer: dict[str, Any], width: int) -> Group:
    """The answer of GET /jobs/compare as tables that fit in `width` columns."""
    jobs = answer["jobs"]
    headers = [
        literal(f"{job['id']} {job['name']}") if job.get("name") else f"JOB {job['id']}"
        for job in jobs
    ]
    sections: list[tuple[str, str, list[Row]]] = [
        (f"{plural(len(jobs), 'job')} side by side", "", _metric_rows(jobs)),
        (_config_title(answer["config"]), "FIELD", _config_rows(answer["config"]["differing"])),
    ]
    per_class = answer["per_class_accuracy"]
    title = (
        "per-class test accuracy (* the best)"
        if per_class
        else "per-class test accuracy: none yet (no job has succeeded)"
    )
    sections.append((title, "CLASS", _class_rows(per_class)))
    all_rows = [row for _, _, rows in sections for row in rows]
    label_width = min(
        LABEL_COLUMN_MAX, max(_cell_len(label) for label, _ in [("FIELD", []), *all_rows])
    )
    widths = [
        min(JOB_COLUMN_MAX, max(_cell_len(cell) for cell in [header, *cells]))
        for header, *cells in zip(headers, *(cells for _, cells in all_rows), strict=True)
    ]
    groups = _column_groups(widths, width - label_width)
    parts: list[RenderableType] = []
    for title, corner, rows in sections:
        parts.append(Text(title))
        for group in groups if rows else []:
            chosen = [(label, [cells[i] for i in group]) for label, cells in rows]
            parts.append(
                _table(
                    corner,
                    [headers[i] for i in group],
                    chosen,
                    label_width,
                    [widths[i] for i in group],
                )
            )
        parts.append(Text(""))
    return Group(*parts[:-1])
