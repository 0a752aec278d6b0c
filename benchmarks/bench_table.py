"""The serving benchmark's table, in Markdown: each repeat's figures side by side, and ratios
to LitServe and to the plain-HTTP ceilings (medians of the repeats)."""

import statistics
from collections.abc import Sequence
from typing import Any, Protocol

LITSERVE = "litserve"


class MeasuredRow(Protocol):
    name: str
    server: str
    ceiling: str | None
    results: dict[int, list[dict[str, Any]]]


def _median(row: MeasuredRow, concurrency: int, key: str) -> float:
    return statistics.median(float(r[key]) for r in row.results[concurrency])


def _each(row: MeasuredRow, concurrency: int, key: str, digits: int) -> str:
    return " / ".join(f"{float(r[key]):,.{digits}f}" for r in row.results[concurrency])


def print_table(
    rows: Sequence[MeasuredRow],
    concurrencies: list[int],
    wrk_p99: dict[str, float | None] | None,
    splits: dict[str, list[int]],
) -> None:
    """Print the table, then how the connections spread over a server's processes."""
    top = max(concurrencies)
    by_server = {row.server: row for row in rows}
    wrk_column = "wrk p99 ms" if wrk_p99 is not None else "wrk p99 ms (no wrk)"
    print(
        f"| server | conn | req/s | p50 ms | p99 ms | {wrk_column} | server CPU ms/req "
        "| x LitServe | x ceiling |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for concurrency in concurrencies:
        for row in rows:
            rps = _median(row, concurrency, "rps")
            litserve = by_server.get(LITSERVE)
            versus_litserve = (
                f"{rps / _median(litserve, concurrency, 'rps'):.2f}" if litserve else "-"
            )
            ceiling = by_server.get(row.ceiling or "")
            versus_ceiling = f"{rps / _median(ceiling, concurrency, 'rps'):.2f}" if ceiling else "-"
            wrk = (wrk_p99 or {}).get(row.name) if concurrency == top else None
            cells = [
                row.name,
                str(concurrency),
                _each(row, concurrency, "rps", 0),
                f"{_median(row, concurrency, 'p50_ms'):.1f}",
                _each(row, concurrency, "p99_ms", 1),
                "-" if wrk is None else f"{wrk:.1f}",
                f"{_median(row, concurrency, 'cpu_ms'):.2f}",
                versus_litserve,
                versus_ceiling,
            ]
            print(f"| {' | '.join(cells)} |")
    failures = {
        row.name: r["statuses"]
        for row in rows
        for runs in row.results.values()
        for r in runs
        if set(r["statuses"]) != {"200"}
    }
    for name, statuses in failures.items():
        print(f"not all 200: {name}: {statuses}")
    for name, split in splits.items():
        print(f"{name}: {top} connections over its processes: {split}")
