"""GET /jobs/compare: jobs trained by a real worker side by side, exactly as their own routes
show them; running and queued jobs with what they have; every wrong list of ids refused."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.db import session_scope
from app.jobs.progress import record_epoch, record_loss_point, record_start
from app.jobs.records import EpochRecord, LossRecord
from app.jobs.transitions import claim_next_job
from app.models import Job
from tests.api.conftest import TrainJob
from tests.conftest import CIFAR_CLASSES

SMALL = {"max_train_samples": 160, "max_test_samples": 50}


def images_per_s(job_id: int) -> float | None:
    """The rate the job's last heartbeat stored (no other route shows it)."""
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job.images_per_s


def points(pairs: list[tuple[float, float]]) -> list[dict[str, float]]:
    return [{"x": x, "y": y} for x, y in pairs]


def as_their_own_routes_show_them(client: TestClient, job_id: int) -> tuple[dict, dict]:
    """A job's entry in `jobs` and in `series`, from GET /jobs/{id} and /jobs/{id}/metrics."""
    job = client.get(f"/jobs/{job_id}").json()
    metrics = client.get(f"/jobs/{job_id}/metrics").json()
    epochs = metrics["epochs"]
    last = epochs[-1] if epochs else None
    steps = job["progress"]["steps_per_epoch"]
    entry = {
        "id": job_id,
        "name": job["name"],
        "tags": job["tags"],
        "status": job["status"],
        "created_at": job["created_at"],
        "finished_at": job["finished_at"],
        "epochs_done": len(epochs),
        "test_accuracy": job["test_accuracy"],
        "best_epoch": metrics["best_epoch"],
        "test_loss": last and last["test_loss"],
        "images_per_s": images_per_s(job_id),
        "training_s": last and last["elapsed_s"],
    }
    series = {
        "job_id": job_id,
        "steps_per_epoch": steps,
        "loss": points(
            [(p["epoch"] - 1 + p["step"] / steps, p["loss"]) for p in metrics["loss_history"]]
        ),
        **{
            name: points([(e["epoch"], e[name]) for e in epochs if e[name] is not None])
            for name in (
                "train_loss",
                "test_loss",
                "test_accuracy",
                "validation_loss",
                "validation_accuracy",
            )
        },
    }
    return entry, series


def test_finished_jobs_side_by_side(client: TestClient, train_job: TrainJob) -> None:
    baseline = train_job(**SMALL)
    faster = train_job(**SMALL, epochs=2, learning_rate=0.05)
    held_out = train_job(**SMALL, validation_fraction=0.25)
    order = [faster, baseline, held_out]  # the answer keeps the request's order
    labelled = client.patch(f"/jobs/{faster}", json={"name": "faster", "tags": {"sweep": "lr"}})
    assert labelled.status_code == 200, labelled.text

    response = client.get("/jobs/compare", params={"ids": f"{faster},{baseline},{held_out}"})
    assert response.status_code == 200, response.text
    answer = response.json()

    shown = [as_their_own_routes_show_them(client, job_id) for job_id in order]
    assert answer["jobs"] == [entry for entry, _ in shown]
    assert answer["series"] == [series for _, series in shown]
    assert [job["status"] for job in answer["jobs"]] == ["succeeded"] * 3
    assert [(job["name"], job["tags"]) for job in answer["jobs"]] == [
        ("faster", {"sweep": "lr"}),
        (None, {}),
        (None, {}),
    ]
    # 160 images in batches of 16 with a loss point every 5: two points an epoch at x = .5, 1;
    # 120 when a quarter is held out: 8 steps, one point at 5/8.
    assert [[p["x"] for p in s["loss"]] for s in answer["series"]] == [
        [0.5, 1.0, 1.5, 2.0],
        [0.5, 1.0],
        [0.625],
    ]
    assert [len(s["validation_loss"]) for s in answer["series"]] == [0, 0, 1]

    config = client.get(f"/jobs/{baseline}").json()["config"]
    differing = {
        "epochs": [2, 1, 1],
        "learning_rate": [0.05, 0.01, 0.01],
        "validation_fraction": [None, None, 0.25],
    }
    assert answer["config"] == {
        "differing": differing,
        "same": {name: value for name, value in config.items() if name not in differing},
    }

    per_class = {
        job_id: client.get(f"/jobs/{job_id}/metrics").json()["per_class_accuracy"]
        for job_id in order
    }
    assert list(answer["per_class_accuracy"]) == CIFAR_CLASSES
    for name, compared in answer["per_class_accuracy"].items():
        values = [per_class[job_id][name] for job_id in order]
        assert compared == {
            "accuracy": values,
            "best": [index for index, value in enumerate(values) if value == max(values)],
        }


def test_running_and_queued_jobs_compare_with_what_they_have(client: TestClient) -> None:
    running = client.post("/jobs", json={"epochs": 2, "seed": 1}).json()["id"]
    queued = client.post("/jobs", json={"epochs": 2, "seed": 2}).json()["id"]
    with session_scope(write=True) as session:
        lease = claim_next_job(session, "w1", 30)
        assert lease is not None and lease.job_id == running
        record_start(session, lease, device="cpu", classes=["cat", "dog"], steps_per_epoch=8)
        for step, loss in ((2, 0.9), (4, 0.8), (6, 0.7), (8, 0.6)):
            record_loss_point(session, lease, LossRecord(epoch=1, step=step, loss=loss))
        epoch = EpochRecord(
            epoch=1, train_loss=0.75, test_loss=0.7, test_accuracy=0.5, elapsed_s=3.5
        )
        record_epoch(session, lease, epoch, 8)
        record_loss_point(session, lease, LossRecord(epoch=2, step=2, loss=0.5))

    answer = client.get("/jobs/compare", params=[("ids", running), ("ids", queued)]).json()
    created = [client.get(f"/jobs/{job_id}").json()["created_at"] for job_id in (running, queued)]
    nothing: dict[str, Any] = {
        "name": None,
        "tags": {},
        "finished_at": None,
        "test_accuracy": None,
        "best_epoch": None,
        "images_per_s": None,
    }
    assert answer["jobs"] == [
        {
            "id": running,
            "status": "running",
            "created_at": created[0],
            "epochs_done": 1,
            "test_loss": 0.7,
            "training_s": 3.5,
            **nothing,
        },
        {
            "id": queued,
            "status": "queued",
            "created_at": created[1],
            "epochs_done": 0,
            "test_loss": None,
            "training_s": None,
            **nothing,
        },
    ]
    assert answer["series"] == [
        {
            "job_id": running,
            "steps_per_epoch": 8,
            "loss": points([(0.25, 0.9), (0.5, 0.8), (0.75, 0.7), (1.0, 0.6), (1.25, 0.5)]),
            "train_loss": points([(1, 0.75)]),
            "test_loss": points([(1, 0.7)]),
            "test_accuracy": points([(1, 0.5)]),
            "validation_loss": [],
            "validation_accuracy": [],
        },
        {
            "job_id": queued,
            "steps_per_epoch": None,
            "loss": [],
            "train_loss": [],
            "test_loss": [],
            "test_accuracy": [],
            "validation_loss": [],
            "validation_accuracy": [],
        },
    ]
    assert answer["config"]["differing"] == {"seed": [1, 2]}
    assert answer["per_class_accuracy"] == {}  # no job has test results yet


def test_both_ways_of_naming_the_ids_answer_the_same(client: TestClient) -> None:
    ids = [client.post("/jobs", json={"seed": seed}).json()["id"] for seed in (1, 2, 3)]
    commas = client.get(f"/jobs/compare?ids={ids[2]},{ids[0]}")
    assert commas.status_code == 200
    assert [job["id"] for job in commas.json()["jobs"]] == [ids[2], ids[0]]
    assert client.get(f"/jobs/compare?ids={ids[2]}&ids={ids[0]}").json() == commas.json()
    mixed = client.get(f"/jobs/compare?ids={ids[1]}, {ids[2]}&ids={ids[0]}")
    assert [job["id"] for job in mixed.json()["jobs"]] == [ids[1], ids[2], ids[0]]


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("", "field required"),
        ("ids=1", "give 2 to 10 distinct job ids (got 1)"),
        ("ids=" + ",".join(map(str, range(1, 12))), "give 2 to 10 distinct job ids (got 11)"),
        ("ids=1,2&ids=3,4,5,6,7,8,9,10,11", "give 2 to 10 distinct job ids (got 11)"),
        ("ids=1,1", "job 1 named more than once"),
        ("ids=2,1,2&ids=1", "jobs 1, 2 named more than once"),
        ("ids=1,cat", "'cat' is not a job id (a whole number from 1 to 2147483647)"),
        ("ids=1,,2", "'' is not a job id (a whole number from 1 to 2147483647)"),
        ("ids=0,1", "'0' is not a job id (a whole number from 1 to 2147483647)"),
        ("ids=-1,1", "'-1' is not a job id (a whole number from 1 to 2147483647)"),
        ("ids=1.0,2", "'1.0' is not a job id (a whole number from 1 to 2147483647)"),
        ("ids=1,2147483648", "'2147483648' is not a job id (a whole number from 1 to 2147483647)"),
        (
            "ids=1," + "9" * 5000,
            f"'{'9' * 5000}' is not a job id (a whole number from 1 to 2147483647)",
        ),
        ("ids=1,%EF%BC%92", "'\uff12' is not a job id (a whole number from 1 to 2147483647)"),
    ],
)
def test_a_wrong_list_of_ids_is_422_saying_what_is_wrong(
    client: TestClient, query: str, problem: str
) -> None:
    response = client.get(f"/jobs/compare?{query}")
    assert response.status_code == 422
    body = response.json()
    assert body["detail"] == f"query.ids: {problem}"
    assert [error["field"] for error in body["errors"]] == ["query.ids"]


def test_ids_that_name_no_job_are_404_naming_each(client: TestClient) -> None:
    job_id = client.post("/jobs").json()["id"]
    response = client.get(f"/jobs/compare?ids=9,{job_id},2147483647")
    assert response.status_code == 404
    assert response.json() == {"detail": "jobs 9, 2147483647 not found"}
    one = client.get(f"/jobs/compare?ids={job_id},9")
    assert (one.status_code, one.json()) == (404, {"detail": "job 9 not found"})


def test_the_document_states_the_ids_rule_and_the_answers(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/jobs/compare"]["get"]
    assert operation["operationId"] == "compare_jobs"
    (parameter,) = operation["parameters"]
    schema = parameter["schema"]
    assert (parameter["name"], parameter["in"], parameter["required"]) == ("ids", "query", True)
    assert (schema["minItems"], schema["maxItems"], schema["uniqueItems"]) == (2, 10, True)
    assert schema["items"] == {"type": "integer", "minimum": 1, "maximum": 2147483647}
    responses = operation["responses"]
    assert responses["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ComparisonOut"
    }
    error = {"$ref": "#/components/schemas/ErrorOut"}
    for status in ("404", "422"):
        assert responses[status]["content"]["application/json"]["schema"] == error
