"""The database goes away mid-job: its disk fills up (SQLite on a small tmpfs), or its server
stops for 20 s (PostgreSQL). The API answers 503 and is not ready meanwhile, the job pauses and
then finishes exactly as an uninterrupted run, and each part says so once in its log."""

import errno
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import httpx
import pytest

from tests.conftest import Env, small_disk
from tests.e2e.conftest import Process, Service, free_port, wait_for

pytestmark = pytest.mark.e2e

DISK_SIZE = "8m"
JOB = {"epochs": 4, "max_train_samples": 400, "log_every": 10, "seed": 7, "promote": "never"}
FULL = "the database's disk is full: nothing was changed; try again once space is freed"
UNREACHABLE = (
    "the database cannot be reached: try again shortly (a change sent just then may have been "
    "saved: check before sending it again)"
)
POSTGRES_STOPPED_S = 20
REPO = Path(__file__).resolve().parents[2]


class OwnPostgres:
    """A PostgreSQL server of this test's own, which it may stop and start again."""

    def __init__(self) -> None:
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
        if not bins:
            pytest.skip("no PostgreSQL server installed (apt-get install postgresql)")
        self.pg_ctl = bins[-1] / "pg_ctl"
        parent = Path(tempfile.mkdtemp(prefix="trainserve-outage-"))
        parent.chmod(0o755)  # the server runs as its own user, which must reach its folder
        self.folder = parent / "data"
        self.port = free_port()
        try:
            self.url = self.start()
        except BaseException:
            shutil.rmtree(parent, ignore_errors=True)
            raise

    def start(self) -> str:
        started = subprocess.run(
            [str(REPO / "scripts" / "postgres.sh"), str(self.folder), str(self.port)],
            capture_output=True,
            text=True,
        )
        assert started.returncode == 0, started.stderr
        return started.stdout.strip()

    def stop(self) -> None:
        as_owner = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        subprocess.run(
            [*as_owner, str(self.pg_ctl), "-D", str(self.folder), "-m", "fast", "-w", "stop"],
            capture_output=True,
            check=True,
        )


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    server = OwnPostgres()
    yield server
    server.stop()
    shutil.rmtree(server.folder.parent, ignore_errors=True)


@pytest.fixture
def database_disk(env: Env) -> Iterator[Path]:
    with small_disk(env.root / "database-disk", DISK_SIZE) as mount_point:
        yield mount_point


def fill(disk: Path) -> Path:
    """A file that takes every free byte of `disk`."""
    filler = disk / "filler"
    # Unbuffered: nothing may be left to write (and fail) when the file is closed.
    with filler.open("wb", buffering=0) as file:
        try:
            while True:
                file.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def finished(client: httpx.Client, job_id: int) -> dict | None:
    job = client.get(f"/jobs/{job_id}").json()
    return job if job["status"] in ("succeeded", "failed", "cancelled") else None


@pytest.mark.database("sqlite")  # its own database either way: once is enough
def test_a_full_database_pauses_the_job_and_refuses_writes_until_space_returns(
    service: Service, synthetic_cifar: Path, database_disk: Path
) -> None:
    api, worker, paused_id = job_in_its_second_epoch(
        service, f"sqlite:///{database_disk}/trainserve.db"
    )
    with service.client() as client:
        filler = fill(database_disk)
        # Writes that still fit in the space SQLite already holds succeed: the readiness
        # probe's, one after another, use it up.
        readiness = cast(
            httpx.Response,
            wait_for(
                lambda: (answer := client.get("/readyz")).status_code == 503 and answer,
                30,
                "/readyz stayed ready on a full disk",
            ),
        )
        assert readiness.json() == {"status": "not ready", "detail": "the database's disk is full"}
        refused = client.post("/jobs", json=JOB)
        assert (refused.status_code, refused.json()) == (503, {"detail": FULL})
        assert refused.headers["retry-after"] == "10"
        stalled = client.get(f"/jobs/{paused_id}").json()
        assert stalled["status"] == "running"
        # Paused, not failed: a few seconds later it is still running.
        time.sleep(4)
        assert client.get(f"/jobs/{paused_id}").json()["status"] == "running"
        assert worker.popen.poll() is None and api.popen.poll() is None

        filler.unlink()
        finishes_as_if_uninterrupted(client, paused_id)
    said_once(worker.log(), "the database's disk is full (")
    said_once(api.log(), "the database's disk is full (")


@pytest.mark.database("postgresql")
def test_a_stopped_postgresql_pauses_the_job_until_it_is_back(
    service: Service, synthetic_cifar: Path, own_postgres: OwnPostgres
) -> None:
    api, worker, paused_id = job_in_its_second_epoch(service, own_postgres.url)
    with service.client() as client:
        own_postgres.stop()
        stopped_at = time.monotonic()
        refused = client.get("/jobs")
        assert (refused.status_code, refused.json()) == (503, {"detail": UNREACHABLE})
        assert client.get("/readyz").status_code == 503
        time.sleep(max(0.0, POSTGRES_STOPPED_S - (time.monotonic() - stopped_at)))
        assert worker.popen.poll() is None and api.popen.poll() is None
        own_postgres.start()
        finishes_as_if_uninterrupted(client, paused_id)
    said_once(worker.log(), "the database cannot be reached (")
    said_once(api.log(), "the database cannot be reached (")


def job_in_its_second_epoch(service: Service, database_url: str) -> tuple[Process, Process, int]:
    """The API and a worker on `database_url`, and a job they have trained for an epoch."""
    service.overrides["TRAINSERVE_DATABASE_URL"] = database_url
    service.overrides["TRAINSERVE_LEASE_SECONDS"] = "120"  # the pause must not cost the lease
    api = service.start_api()
    worker = service.start_worker()
    with service.client() as client:
        job_id: int = client.post("/jobs", json=JOB).json()["id"]
        wait_for(
            lambda: client.get(f"/jobs/{job_id}").json()["progress"]["epoch"] >= 2,
            120,
            "the job never reached its second epoch",
        )
    return api, worker, job_id


def finishes_as_if_uninterrupted(client: httpx.Client, paused_id: int) -> None:
    """The paused job succeeds with exactly the results of the same job run without a pause."""
    paused = cast(
        dict, wait_for(lambda: finished(client, paused_id), 180, "the paused job never ended")
    )
    assert paused["status"] == "succeeded", paused["error"]
    assert client.get("/readyz").status_code == 200
    reference_id = client.post("/jobs", json=JOB).json()["id"]
    reference = cast(
        dict, wait_for(lambda: finished(client, reference_id), 180, "the reference job")
    )
    assert reference["status"] == "succeeded", reference["error"]
    paused_metrics = client.get(f"/jobs/{paused_id}/metrics").json()
    reference_metrics = client.get(f"/jobs/{reference_id}/metrics").json()
    for field in ("loss_history", "test_accuracy", "per_class_accuracy", "confusion_matrix"):
        assert paused_metrics[field] == reference_metrics[field], field
    assert [e["test_loss"] for e in paused_metrics["epochs"]] == [
        e["test_loss"] for e in reference_metrics["epochs"]
    ]


def said_once(log: str, began: str) -> None:
    """The outage said when it began and when it ended, by each part of the process that met
    it (the job, the worker's own record or the API), and no traceback."""
    assert "Traceback" not in log, log
    lines = log.splitlines()
    starts = [line for line in lines if began in line]
    ends = [line for line in lines if "can be written again" in line]
    assert 1 <= len(starts) <= 2 and len(ends) == len(starts), log
