"""TRAINSERVE_LOG_FORMAT=json on a real server and worker: every line is a JSON object, and the
lines written for a request or a job carry its id."""

import json
from pathlib import Path

import pytest

from tests.conftest import Env
from tests.e2e.conftest import Process, Service, wait_for

# Once, on SQLite: the log's format does not depend on the database.
pytestmark = [pytest.mark.e2e, pytest.mark.database("sqlite")]

TINY_JOB = {"epochs": 1, "batch_size": 8, "max_train_samples": 40, "seed": 1, "device": "cpu"}


def json_lines(process: Process) -> list[dict[str, object]]:
    """The process's log, each line parsed (a line that is not JSON fails the test here)."""
    return [json.loads(line) for line in process.log().splitlines() if line.strip()]


def test_json_lines_carry_the_request_and_the_job(
    env: Env, service: Service, synthetic_cifar: Path
) -> None:
    service.overrides = {"TRAINSERVE_LOG_FORMAT": "json"}
    api = service.start_api()
    worker = service.start_worker()
    client = service.client()

    submitted = client.post("/jobs", json=TINY_JOB, headers={"X-Request-ID": "abc123"})
    assert submitted.status_code == 202
    job_id = submitted.json()["id"]
    wait_for(lambda: client.get(f"/jobs/{job_id}").json()["status"] == "succeeded", 120, "job")
    assert client.get("/no/such/path", headers={"X-Request-ID": "def456"}).status_code == 404
    service.stop_all()

    served = json_lines(api)
    fields = {"timestamp", "level", "logger", "message"}
    assert all(fields <= line.keys() for line in served), served
    # The route's own line (logged in the thread pool) and the server's access line.
    requested = [line for line in served if line.get("request_id") == "abc123"]
    assert [(line["logger"], line["level"]) for line in requested] == [
        ("trainserve.jobs", "INFO"),
        ("uvicorn.access", "INFO"),
    ]
    assert requested[0]["message"] == f"job {job_id} queued: tutorial_cnn on cifar10"
    assert str(requested[1]["message"]).endswith(' - "POST /jobs HTTP/1.1" 202')
    unmatched = [line["message"] for line in served if line.get("request_id") == "def456"]
    assert len(unmatched) == 1
    assert str(unmatched[0]).endswith(' - "GET /no/such/path HTTP/1.1" 404')
    # uvicorn's lines outside any request carry no id.
    (ready,) = [line for line in served if line["message"] == "Application startup complete."]
    assert ready.keys() == fields and ready["logger"] == "uvicorn.error"

    trained = json_lines(worker)
    run = [line for line in trained if line.get("job_id") == job_id]
    messages = [str(line["message"]) for line in run]
    assert messages[0].endswith(f" claimed job {job_id} (attempt 1)")
    assert messages[-1].startswith(f"job {job_id} succeeded: test accuracy ")
    # The training loop's own line does not name the job; its job_id does.
    assert sum(m.startswith("training on cpu") for m in messages) == 1
    named = [line for line in trained if f"job {job_id}" in str(line["message"])]
    assert named == [line for line in run if f"job {job_id}" in str(line["message"])]
    (started,) = [line for line in trained if " started: " in str(line["message"])]
    assert started.keys() == fields  # before any job: no job_id
