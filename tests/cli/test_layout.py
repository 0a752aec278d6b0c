"""What the command line prints fits an 80-column terminal, and reads well in a log."""

import io
from typing import Any

from rich.console import Console

from app.cli import render
from app.cli.live import LiveJob
from app.cli.remote import JobEvent

NARROW = 80
LONG_ERROR = (
    "dataset ds-0123456789ab failed: 14 files are not images: train/cat/a.txt, train/cat/b.txt, "
    "train/dog/c.txt and 11 more [see GET /datasets/ds-0123456789ab]"
)
WAITING = (
    "the job needs 4 GPUs on one worker and the live workers offer at most 2 GPUs; it waits "
    "for a worker that has them"
)


def a_job(job_id: int, status: str, **fields: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "id": job_id,
        "status": status,
        "progress": {"epoch": 0, "epochs": 2, "step": 0, "steps_per_epoch": None},
        "test_accuracy": None,
        "device": None,
        "created_at": "2026-11-30T01:52:07.123456Z",
        "error": None,
        "waiting_reason": None,
        "config": {"epochs": 2},
        "name": None,
        "tags": {},
        "notes": None,
    }
    return {**job, **fields}


def printed(renderable: object, width: int = NARROW) -> list[str]:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text().rstrip("\n").split("\n")


def test_a_list_of_jobs_is_one_line_a_job_in_80_columns() -> None:
    jobs = [
        a_job(
            12,
            "running",
            name="learning-rate trial 0.01",
            device="cuda:0",
            progress={"epoch": 1, "epochs": 2, "step": 5000, "steps_per_epoch": 12500},
        ),
        a_job(11, "failed", error=LONG_ERROR, test_accuracy=None, name="[b]x"),
        a_job(10, "queued", waiting_reason=WAITING),
        a_job(9, "succeeded", test_accuracy=0.6421, device="cpu", name="base"),
    ]
    lines = printed(render.jobs_table(jobs, 4, NARROW))
    assert [line.rstrip() for line in lines[:2]] == [
        "4 jobs",
        "ID  NAME     STATUS     PROGRESS        ACCURACY  CREATED           NOTE",
    ]
    # The name and the note share what is left: the name cut first, the note keeps 12.
    assert lines[2].rstrip() == "12  learni…  running    epoch 1/2, 40%         -  2026-11-30 01:52"
    assert lines[3] == (
        "11  [b]x     failed     -                      -  2026-11-30 01:52  dataset ds-…"
    )
    assert lines[4] == (
        "10  -        queued     -                      -  2026-11-30 01:52  the job nee…"
    )
    assert lines[5].rstrip() == " 9  base     succeeded  -                 64.21%  2026-11-30 01:52"
    assert len(lines) == 6 and max(map(len, lines)) <= NARROW


def test_a_wide_terminal_shows_names_up_to_24_characters() -> None:
    named = a_job(3, "queued", name="a" * 23 + "bc")
    (line,) = printed(render.jobs_table([named], 1, 200), 200)[2:]
    assert line.startswith(" 3  " + "a" * 23 + "…  queued")


def test_a_wide_terminal_shows_the_whole_note() -> None:
    lines = printed(render.jobs_table([a_job(3, "failed", error=LONG_ERROR)], 1, 250), 250)
    assert lines[2].rstrip().endswith(LONG_ERROR)


def test_markup_like_text_from_the_server_is_printed_as_it_is() -> None:
    lines = printed(render.jobs_table([a_job(3, "failed", error="[red]x[/] [b]")], 1, NARROW))
    assert lines[2].rstrip().endswith("[red]x[/] [b]")


def events(steps_per_epoch: int) -> list[JobEvent]:
    return [
        JobEvent(1, "status", {"status": "running", "attempt": 1, "worker_id": "w"}),
        JobEvent(2, "started", {"steps_per_epoch": steps_per_epoch}),
        JobEvent(3, "loss", {"epoch": 1, "step": 2000, "loss": 2.18349}),
        JobEvent(4, "progress", {"epoch": 1, "step": 2500}),
    ]


def test_the_live_bar_fits_80_columns_without_cutting_anything() -> None:
    terminal = Console(file=io.StringIO(), force_terminal=True, width=NARROW)
    live = LiveJob(terminal, a_job(7, "queued"))
    for event in events(12500):
        live.show(event)
    assert live.bar is not None
    (line,) = printed(live.bar.get_renderable())
    assert "…" not in line and len(line) <= NARROW
    assert line.startswith("job 7 running ")
    assert "2500/25000 epoch 1/2 loss 2.183" in line and line.rstrip().endswith("left")


def test_a_wide_terminal_shows_step_and_elapsed_time_too() -> None:
    terminal = Console(file=io.StringIO(), force_terminal=True, width=160)
    live = LiveJob(terminal, a_job(7, "queued"))
    for event in events(12500):
        live.show(event)
    assert live.bar is not None
    (line,) = printed(live.bar.get_renderable(), 160)
    assert "2500/25000 epoch 1/2 step 2500 loss 2.183 0:00:00 left" in line


def test_outside_a_terminal_progress_is_plain_lines() -> None:
    log = io.StringIO()
    live = LiveJob(Console(file=log, width=NARROW), a_job(7, "queued"))
    assert live.bar is None
    epoch = {"epoch": 1, "train_loss": 2.1, "test_loss": 1.9, "test_accuracy": 0.3125}
    for event in [
        *events(12500),
        JobEvent(5, "epoch", epoch),
        JobEvent(6, "status", {"status": "queued", "reason": "its worker [w] stopped"}),
        JobEvent(7, "rewound", {"epoch": 1, "step": 12500}),
        JobEvent(8, "status", {"status": "succeeded", "test_accuracy": 0.3125}),
    ]:
        live.show(event)
    assert log.getvalue().splitlines() == [
        "job 7 running (attempt 1)",
        "epoch 1, step 2000/12500: loss 2.183",
        "epoch 1: train loss 2.100, test loss 1.900, test accuracy 31.25%",
        "job 7 requeued: its worker [w] stopped",
        "job 7 resumed from its checkpoint at epoch 1, step 12500",
    ]
    assert live.final == {"status": "succeeded", "test_accuracy": 0.3125}
