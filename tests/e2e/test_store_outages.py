"""The S3 server stops under a running service (the API and workers as real processes, the
artifacts in a bucket of a real SeaweedFS whose S3 gateway is stopped and started again).

Stopped for 20 s mid-job, the job waits (it neither fails nor restarts) and ends exactly as an
uninterrupted run, its worker saying once when the outage began and once when it ended, and
/readyz is 503 naming the store meanwhile. A worker told to stop while it waits hands its job
back; one started while the server is down says so and claims nothing; one whose job waited
past TRAINSERVE_STORE_OUTAGE_LIMIT_SECONDS fails it naming the store, claims nothing more until
the server answers, and then runs the job's retry to the end.
"""

import re
import time
from collections.abc import Iterator
from typing import cast

import httpx
import pytest

from app.backoff import LONGEST_RETRY_DELAY_S
from tests.conftest import Env
from tests.e2e.conftest import Process, Service, wait_for
from tests.e2e.test_chaos import CONFIG, assert_same_run, run_to_end
from tests.s3 import AWS_VARIABLES
from tests.s3_gateway import StoppableS3

pytestmark = pytest.mark.e2e

# The chaos tests' job, longer: still training when the test stops the server after its first
# checkpoint, however slow the test is to react.
JOB = {**CONFIG, "epochs": 6}
OUTAGE_S = 20
SHORT_LIMIT_S = 3
QUEUED_CHECK_S = 2  # how long a queued job is watched not being claimed
READY_TIMEOUT_S = 20  # the API asks a store that answers again after 15 s


@pytest.fixture
def stoppable_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[StoppableS3]:
    """An S3 server of the test's own, which the service's processes use."""
    s3 = StoppableS3()
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in s3.bucket.variables().items():
        monkeypatch.setenv(name, value)
    yield s3
    s3.close()


def status(client: httpx.Client, job_id: int) -> tuple[str, int]:
    job = client.get(f"/jobs/{job_id}").json()
    return job["status"], job["attempts"]


def not_ready(client: httpx.Client) -> dict[str, str]:
    """/readyz's answer once it is 503."""
    return cast(
        dict,
        wait_for(
            lambda: (answer := client.get("/readyz")).status_code == 503 and answer.json(),
            READY_TIMEOUT_S,
            "/readyz stayed ready with the S3 server stopped",
        ),
    )


def said(process: Process, pattern: str) -> list[re.Match[str]]:
    """The lines of the process's log that match `pattern`."""
    return list(re.finditer(pattern, process.log()))


@pytest.mark.database("sqlite")  # about the store, not the database
def test_the_s3_server_stopping_pauses_jobs_and_past_the_limit_fails_them(
    env: Env, synthetic_cifar: object, service: Service, stoppable_s3: StoppableS3
) -> None:
    s3 = stoppable_s3
    store = f"artifact store {s3.bucket.url} at {s3.server.endpoint}"
    unreachable = re.escape(f"{store}: cannot be reached (Could not connect to the endpoint URL:")
    service.overrides = {"TRAINSERVE_CHECKPOINT_SECONDS": "0.25"}
    service.start_api()
    first = service.start_worker("first")
    client = service.client()
    reference_id = client.post("/jobs", json=JOB).json()["id"]
    assert run_to_end(client, reference_id)["status"] == "succeeded"
    reference = client.get(f"/jobs/{reference_id}/metrics").json()

    # Stopped for 20 s mid-job: the job waits for it, and ends as if nothing had happened.
    job_id = client.post("/jobs", json=JOB).json()["id"]
    first.wait_for_log(f"job {job_id}: checkpoint epoch")  # the next one finds it stopped
    s3.stop()
    stopped_at = time.monotonic()
    first.wait_for_log("; retrying until it answers")
    readiness = not_ready(client)
    assert re.fullmatch(unreachable + ".*", readiness["detail"]), readiness
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped_at)))
    assert status(client, job_id) == ("running", 1)
    s3.start()
    outage_s = time.monotonic() - stopped_at
    job = run_to_end(client, job_id)
    assert (job["status"], job["attempts"]) == ("succeeded", 1), job["error"]
    assert_same_run(client, job_id, reference, abs=1e-6)
    began = said(first, rf"job {job_id}: ({re.escape(store)}: .*); retrying until it answers")
    ended = said(
        first, rf"job {job_id}: the artifact store answers again after (\d+) s \((\d+) tries"
    )
    assert (len(began), len(ended)) == (1, 1), first.log()
    assert f"job {job_id}: resuming" not in first.log()
    # Counted from the first failed try (boto3's own retries come first) to the first that
    # succeeds: the next after the server is back, at most LONGEST_RETRY_DELAY_S later.
    assert OUTAGE_S - 5 <= int(ended[0][1]) <= outage_s + 2 * LONGEST_RETRY_DELAY_S, ended[0][0]

    # Told to stop while it waits: the job goes back to the queue, its checkpoint kept.
    job_id = client.post("/jobs", json=JOB).json()["id"]
    first.wait_for_log(f"job {job_id}: checkpoint epoch")
    s3.stop()
    wait_for(
        lambda: said(first, rf"job {job_id}: .*; retrying until it answers"),
        30,
        "the job never met the stopped server",
    )
    assert first.stop() == 0
    assert said(first, rf"job {job_id}: stopping while {re.escape(store)}: .*; handing it back")
    assert status(client, job_id) == ("queued", 0)

    # Started while the server is down: it says so, and claims nothing.
    second = service.start_worker(
        "second", private={"TRAINSERVE_STORE_OUTAGE_LIMIT_SECONDS": str(SHORT_LIMIT_S)}
    )
    second.wait_for_log("; claiming nothing until it answers")
    assert said(second, rf"worker \S+: {unreachable}.*; claiming nothing until it answers")
    time.sleep(QUEUED_CHECK_S)
    assert status(client, job_id) == ("queued", 0)

    # Back: the job resumes there; stopped for longer than the limit, it fails naming the store.
    s3.start()
    second.wait_for_log(f"job {job_id}: resuming from checkpoint")
    second.wait_for_log(f"job {job_id}: checkpoint epoch")
    s3.stop()
    failed = run_to_end(client, job_id)
    error = str(failed["error"])
    assert failed["status"] == "failed"
    assert re.fullmatch(
        rf"{re.escape(store)}: .*: cannot be reached \(.*\) \(out of reach for \d+ s; "
        rf"TRAINSERVE_STORE_OUTAGE_LIMIT_SECONDS is {SHORT_LIMIT_S}\)",
        error,
    ), error
    assert f"job {job_id} failed: {error}\n" in second.log()

    # Its worker claims nothing while the server is down, and runs the retry once it is back.
    second.wait_for_log("; claiming no job until it answers")
    retry_id = client.post(f"/jobs/{job_id}/retry").json()["id"]
    time.sleep(QUEUED_CHECK_S)
    assert status(client, retry_id) == ("queued", 0)
    assert not_ready(client)["detail"].startswith(f"{store}: cannot be reached")
    s3.start()
    retried = run_to_end(client, retry_id)
    assert (retried["status"], retried["attempts"]) == ("succeeded", 1), retried["error"]
    assert_same_run(client, retry_id, reference, abs=1e-6)
    assert said(second, r"worker \S+: the artifact store answers again after \d+ s")
    wait_for(lambda: client.get("/readyz").status_code == 200, READY_TIMEOUT_S, "never ready")
    for worker in (first, second):  # each outage said in a line or two, not a traceback
        assert "Traceback" not in worker.log(), worker.log()
