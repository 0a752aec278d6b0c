"""Machines that share nothing but the database and a bucket: the API and two workers as real
processes, each with a data and an artifacts folder of its own (its own copy of the dataset),
and a bucket of a real S3-compatible server. A worker killed with SIGKILL mid-job leaves its
checkpoint in the bucket; the other resumes from it and ends exactly as an uninterrupted run;
the API serves, exports and lists the mistakes of models it never had on its disk; the sweep
(`trainserve gc`) removes an orphan object and nothing a row refers to. A dataset uploaded to
the API is decoded and trained on by a worker that sees only the bucket. A worker killed while a
checkpoint's PUT is held open half-sent (by a proxy in front of the server) leaves no object and
no reference to it: the other resumes from the checkpoint before it."""

import re
import subprocess
import time
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
import numpy as np
import pytest

from app.bucket_sweep import BucketSweep, sweep_bucket
from app.db import session_scope
from app.models import Job
from app.storage.bucket import Bucket
from app.storage.config import get_store
from tests.api.test_datasets import colour_archive
from tests.api.test_exports import png
from tests.conftest import Env, synthetic_split, write_cifar_layout
from tests.e2e.conftest import START_TIMEOUT_S, TRAINSERVE, Service
from tests.e2e.test_chaos import CONFIG, assert_same_run, recorded_checkpoint, run_to_end
from tests.e2e.test_poison_dataset import final, upload
from tests.s3 import S3Bucket
from tests.s3_faults import Faults, PutHold, faulty_proxy

pytestmark = pytest.mark.e2e
ON_A_DATASET = {"epochs": 1, "batch_size": 4, "log_every": 10, "seed": 7, "device": "cpu"}


def machine(env: Env, name: str) -> dict[str, str]:
    """The folders of a machine of its own, with its own copy of the (synthetic) CIFAR-10."""
    root = env.root / name
    write_cifar_layout(root / "data", synthetic_split(400, seed=1), synthetic_split(100, seed=2))
    return {
        "TRAINSERVE_DATA_DIR": str(root / "data"),
        "TRAINSERVE_ARTIFACTS_DIR": str(root / "artifacts"),
    }


FAST_LEASES = {
    "TRAINSERVE_LEASE_SECONDS": "1.5",
    "TRAINSERVE_HEARTBEAT_SECONDS": "0.2",
    "TRAINSERVE_CHECKPOINT_SECONDS": "0.25",
}


def local_files(env: Env, pattern: str) -> list[Path]:
    """Files of jobs (`jobs/*`) or datasets in any machine's own folders, outside its cache of
    the bucket."""
    return [p for name in ("api", "first", "second") for p in (env.root / name).rglob(pattern)]


# Machines of their own share a database server: PostgreSQL's pass runs this (SQLite's, one
# machine, runs the rest of the suite against a bucket of its own where a test asks for one).
@pytest.mark.database("postgresql")
def test_machines_sharing_only_the_database_and_a_bucket(
    env: Env, s3_bucket: S3Bucket, service: Service
) -> None:
    service.overrides = FAST_LEASES
    service.start_api(private=machine(env, "api"))
    first = service.start_worker("first", private=machine(env, "first"))
    client = service.client()
    reference_id = client.post("/jobs", json=CONFIG).json()["id"]
    assert run_to_end(client, reference_id)["status"] == "succeeded"
    reference = client.get(f"/jobs/{reference_id}/metrics").json()

    job_id = client.post("/jobs", json=CONFIG).json()["id"]
    first.wait_for_log(f"job {job_id}: checkpoint epoch")
    first.kill()
    recorded = recorded_checkpoint(job_id)  # what the database says as the machine dies
    assert recorded is not None and client.get(f"/jobs/{job_id}").json()["status"] == "running"

    second = service.start_worker("second", private=machine(env, "second"))
    job = run_to_end(client, job_id)
    assert (job["status"], job["attempts"]) == ("succeeded", 2), second.log()
    store = f"artifact store {s3_bucket.url} at {s3_bucket.server.endpoint}"
    assert f"; {store}\n" in second.log()
    resumed = re.search(rf"job {job_id}: resuming from checkpoint (\S+) ", second.log())
    assert resumed is not None and resumed.group(1) == recorded
    assert_same_run(client, job_id, reference, abs=1e-6)
    assert recorded_checkpoint(job_id) is None
    assert [k for k in s3_bucket.stored_keys() if k.startswith(f"jobs/{job_id}/")] == [
        f"jobs/{job_id}/model-attempt2.pt",
        f"jobs/{job_id}/test-predictions-attempt2.pt",
    ]

    image = png(np.full((32, 32, 3), 90, dtype=np.uint8))
    answer = client.post("/predict", files={"file": ("x.png", image)}, params={"job_id": job_id})
    assert answer.status_code == 200, answer.text
    errors = client.get(f"/jobs/{job_id}/errors")
    assert errors.status_code == 200, errors.text
    export = client.get("/models/cifar10/versions/2/export", params={"format": "safetensors"})
    assert export.status_code == 200, export.text
    assert "exports/cifar10/v2/cifar10-v2.safetensors" in s3_bucket.stored_keys()
    assert local_files(env, "jobs/*") == []

    # A dataset uploaded to the API is decoded and trained on by a worker with folders of its
    # own, and its images served by the API, which never decoded it.
    archive = colour_archive(env.root / "colours.zip", per_class=4)
    dataset_id = upload(client, archive)
    assert final(client, dataset_id)["status"] == "ready"
    on_it = client.post("/jobs", json={**ON_A_DATASET, "dataset": dataset_id}).json()["id"]
    assert (run_to_end(client, on_it)["status"], recorded_checkpoint(on_it)) == ("succeeded", None)
    assert f"dataset {dataset_id} ready" in second.log()
    served = client.get(f"/datasets/{dataset_id}/images/test/0.png")
    assert (served.status_code, served.headers["content-type"]) == (200, "image/png")
    assert [k for k in s3_bucket.stored_keys() if k.startswith("datasets/")] == [
        f"datasets/{dataset_id}/images-attempt1.pt"  # its upload is gone once decoded
    ]
    assert local_files(env, "datasets/*") == []

    kept = s3_bucket.stored_keys()
    store_client = s3_bucket.server.client()
    for stray in (f"jobs/{job_id}/stray.pt", f"datasets/{dataset_id}/stray.pt"):
        store_client.put_object(Bucket=s3_bucket.bucket, Key=s3_bucket.name(stray), Body=b"z")
    time.sleep(1.1)  # the server's times are in whole seconds
    gc = subprocess.run(
        [TRAINSERVE, "gc", "--grace", "0"],
        env={**service.environment(), **machine(env, "admin")},
        capture_output=True,
        text=True,
    )
    assert gc.returncode == 0, gc.stderr
    assert ", 2 object(s) no row refers to and 0 unfinished multipart upload(s) in" in gc.stdout
    assert s3_bucket.stored_keys() == kept
    again = client.get("/models/cifar10/versions/2/export", params={"format": "safetensors"})
    assert (again.status_code, again.content) == (200, export.content)


def recorded_keys(job_id: int) -> tuple[str | None, str | None]:
    """The checkpoint keys the job's row records: the newest and the one before."""
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job.checkpoint_key, job.previous_checkpoint_key


def loss_difference(client: httpx.Client, job_id: int, reference: dict[str, Any]) -> float:
    """The largest difference between the job's loss points and the reference run's."""
    losses = [p["loss"] for p in client.get(f"/jobs/{job_id}/metrics").json()["loss_history"]]
    return max(abs(a - b["loss"]) for a, b in zip(losses, reference["loss_history"], strict=True))


@pytest.mark.database("sqlite")  # about the bucket and the worker, not the database
def test_a_worker_killed_mid_upload_of_a_checkpoint_leaves_the_one_before(
    env: Env, s3_bucket: S3Bucket, service: Service
) -> None:
    service.overrides = FAST_LEASES
    service.start_api(private=machine(env, "api"))
    client = service.client()
    job_id = client.post("/jobs", json=CONFIG).json()["id"]
    checkpoints = f"jobs/{job_id}/checkpoints/"
    # The job's first checkpoint goes to the bucket whole; its second is held half-sent.
    hold = PutHold(s3_bucket.name(checkpoints), let_through=1)
    with faulty_proxy(s3_bucket.server.endpoint, Faults(hold=hold)) as endpoint:
        through_proxy = {"TRAINSERVE_S3_ENDPOINT_URL": endpoint}
        victim = service.start_worker("victim", private={**machine(env, "victim"), **through_proxy})
        held = hold.wait(START_TIMEOUT_S)
        victim.kill()
        hold.release.set()  # the connections dropped, as the dead worker's would be
    half_written = held.path.split(f"/{s3_bucket.bucket}/{s3_bucket.prefix}/", 1)[1]
    assert 0 < held.sent < held.length
    assert re.fullmatch(rf"{checkpoints}epoch\d{{4}}-step\d{{8}}-attempt1\.pt", half_written)
    newest, before = recorded_keys(job_id)
    assert newest is not None and before is None and half_written not in (newest, before)
    assert [k for k in s3_bucket.stored_keys() if k.startswith(checkpoints)] == [newest]
    assert f"checkpoint {PurePosixPath(newest).name} written" in victim.log()
    assert client.get(f"/jobs/{job_id}").json()["status"] == "running"

    successor_folder = env.root / "successor"
    assert not successor_folder.exists()  # an empty cache: it reads the bucket
    successor = service.start_worker("successor", private=machine(env, "successor"))
    successor.wait_for_log(f"job {job_id}: resuming from checkpoint {PurePosixPath(newest).name} ")
    assert half_written not in s3_bucket.stored_keys()  # the server dropped the half it got
    job = run_to_end(client, job_id)
    assert (job["status"], job["attempts"]) == ("succeeded", 2), successor.log()
    reference_id = client.post("/jobs", json=CONFIG).json()["id"]
    assert run_to_end(client, reference_id)["status"] == "succeeded"
    reference = client.get(f"/jobs/{reference_id}/metrics").json()
    assert_same_run(client, job_id, reference, abs=1e-6)
    difference = loss_difference(client, job_id, reference)

    # Nothing is left behind for the sweep: no object and no unfinished upload.
    kept = s3_bucket.stored_keys()
    assert [k for k in kept if k.startswith(f"jobs/{job_id}/")] == [
        f"jobs/{job_id}/model-attempt2.pt",
        f"jobs/{job_id}/test-predictions-attempt2.pt",
    ]
    store = get_store()
    assert isinstance(store, Bucket)
    assert sweep_bucket(store, time.time(), uploads_older_than_s=0) == BucketSweep()
    assert s3_bucket.stored_keys() == kept
    print(
        f"\nmid-upload kill: 1 trial, held {held.sent} of {held.length} bytes, 1 resumed from "
        f"the checkpoint before, 0 lost, largest loss difference {difference:.1e}"
    )
