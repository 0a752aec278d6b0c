"""`trainserve compare` prints jobs as columns that fit 80 columns, the best of each class
starred, and only the config fields that differ."""

from typing import Any

from app.cli.side_by_side import comparison_tables
from tests.cli.test_layout import NARROW, printed


def compared_job(job_id: int, **fields: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "id": job_id,
        "name": None,
        "tags": {},
        "status": "succeeded",
        "created_at": "2026-11-30T01:52:07.123456Z",
        "finished_at": "2026-11-30T01:58:07.123456Z",
        "epochs_done": 2,
        "test_accuracy": 0.5512,
        "best_epoch": None,
        "test_loss": 1.2345,
        "images_per_s": 1234.5,
        "training_s": 21.34,
    }
    return {**job, **fields}


def an_answer(jobs: list[dict[str, Any]], **parts: Any) -> dict[str, Any]:
    answer = {
        "jobs": jobs,
        "config": {"differing": {}, "same": {"epochs": 2, "seed": 3}},
        "per_class_accuracy": {},
        "series": [],
    }
    return {**answer, **parts}


def test_three_jobs_side_by_side_in_80_columns() -> None:
    jobs = [
        compared_job(12),
        compared_job(9, epochs_done=4, test_accuracy=0.6021, best_epoch=3, test_loss=1.1),
        compared_job(
            14,
            status="running",
            epochs_done=1,
            test_accuracy=None,
            images_per_s=None,
            training_s=10.0,
        ),
    ]
    config = {
        "differing": {
            "learning_rate": [0.001, 0.01, 0.01],
            "dataset": ["cifar10", "cifar10", "ds-0123456789ab"],
            "hidden_layers": [None, None, [64, 32]],
        },
        "same": {"epochs": 2, "seed": 3},
    }
    per_class = {
        "airplane": {"accuracy": [0.61, 0.7, None], "best": [1]},
        "cat": {"accuracy": [0.4, 0.4, None], "best": [0, 1]},  # a tie: both starred
    }
    answer = an_answer(jobs, config=config, per_class_accuracy=per_class)
    assert [line.rstrip() for line in printed(comparison_tables(answer, NARROW))] == [
        "3 jobs side by side",
        "                  JOB 12      JOB 9           JOB 14",
        "status         succeeded  succeeded          running",
        "epochs done            2          4                1",
        "test accuracy     55.12%     60.21%                -",
        "best epoch             -          3                -",
        "test loss          1.234      1.100            1.234",
        "images/s           1,234      1,234                -",
        "training time      21.3s      21.3s            10.0s",
        "",
        "config: 3 fields differ, 2 the same",
        "FIELD             JOB 12      JOB 9           JOB 14",
        "learning_rate      0.001       0.01             0.01",
        "dataset          cifar10    cifar10  ds-0123456789ab",
        "hidden_layers       null       null         [64, 32]",
        "",
        "per-class test accuracy (* the best)",
        "CLASS             JOB 12      JOB 9           JOB 14",
        "airplane          61.00%    *70.00%                -",
        "cat              *40.00%    *40.00%                -",
    ]


def test_ten_jobs_go_on_below_what_fits_80_columns() -> None:
    jobs = [compared_job(job_id) for job_id in range(1, 11)]
    seeds = {"seed": list(range(100_000, 100_010))}
    answer = an_answer(jobs, config={"differing": seeds, "same": {"epochs": 2}})
    lines = printed(comparison_tables(answer, NARROW))
    assert max(map(len, lines)) <= NARROW
    headers = [line.split() for line in lines if line.lstrip().startswith(("JOB", "FIELD"))]
    first = ["JOB", "1", "JOB", "2", "JOB", "3", "JOB", "4", "JOB", "5", "JOB", "6"]
    second = ["JOB", "7", "JOB", "8", "JOB", "9", "JOB", "10"]
    assert headers == [first, second, ["FIELD", *first], ["FIELD", *second]]
    assert lines[lines.index("config: 1 field differs, 1 the same") + 2].split() == [
        "seed",
        *map(str, range(100_000, 100_006)),
    ]
    assert lines[-1] == "per-class test accuracy: none yet (no job has succeeded)"


def test_identical_configs_and_long_values() -> None:
    long_name = "a-dataset-with-a-very-long-name-indeed"
    jobs = [compared_job(1), compared_job(2)]
    answer = an_answer(
        jobs, config={"differing": {"dataset": [long_name, "[red]x[/]"]}, "same": {"seed": 3}}
    )
    lines = printed(comparison_tables(answer, NARROW))
    row = next(line for line in lines if line.startswith("dataset"))
    assert row.split() == ["dataset", "a-dataset-with-a-…", "[red]x[/]"]  # cut, and not markup
    same = printed(comparison_tables(an_answer(jobs), NARROW))
    assert "config: all 2 fields the same" in same
    assert not any(line.startswith("FIELD") for line in same)


def test_a_jobs_name_heads_its_column_as_written() -> None:
    jobs = [compared_job(1, name="a[/]b"), compared_job(2, name="[red]x"), compared_job(3)]
    lines = printed(comparison_tables(an_answer(jobs), NARROW))
    assert lines[1].split() == ["1", "a[/]b", "2", "[red]x", "JOB", "3"]  # text, not markup
