"""Files a crash orphans are swept, and the sweep never touches what a row refers to: an API
killed between an upload's arrival and its 202 leaves nothing once it starts again, while jobs
train, datasets decode and uploads arrive beside sweeps twice a second."""

import contextlib
import os
import re
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.api.test_datasets import colour_archive, noisy_png
from tests.conftest import Env
from tests.e2e.conftest import TRAINSERVE, Service, wait_for
from tests.e2e.test_chaos import run_to_end
from tests.e2e.test_poison_dataset import final, upload
from tests.test_sweep import age, files, write

pytestmark = pytest.mark.e2e

UPLOAD_BYTES = 20 * 1024 * 1024
HOUR_S = 3600.0
TRAINING = {"epochs": 3, "batch_size": 4, "log_every": 10, "seed": 7, "device": "cpu"}


def post_in_background(url: str, body: bytes) -> threading.Thread:
    """POST /datasets from a thread: its API is killed before it answers."""

    def send() -> None:
        with contextlib.suppress(httpx.TransportError):  # the API dies under it, as meant
            httpx.post(f"{url}/datasets", files={"file": ("big.zip", body)}, timeout=60)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


SWEPT = re.compile(
    r"sweep removed (\d+) unfinished upload\(s\), (\d+) folder\(s\) of deleted datasets, "
    r"(\d+) folder\(s\) of deleted weights files, (\d+) folder\(s\) of deleted jobs, "
    r"(\d+) export folder\(s\) of deleted model versions, (\d+) unrecorded file\(s\) of "
    r"finished jobs and datasets: (\d+) bytes"
)


def swept(log: str) -> list[int]:
    """What the sweeps logged in `log` removed, added up: uploads, dataset folders, weights
    folders, job folders, export folders, unrecorded files, bytes."""
    totals = [0] * 7
    for found in SWEPT.finditer(log):
        totals = [total + int(n) for total, n in zip(totals, found.groups(), strict=True)]
    return totals


def test_an_upload_orphaned_by_a_killed_api_is_swept_at_the_next_start(
    env: Env, service: Service
) -> None:
    service.overrides = {
        "TRAINSERVE_FAILPOINT_UPLOAD_PAUSE_SECONDS": "60",
        "TRAINSERVE_SWEEP_GRACE_SECONDS": "0",
    }
    api = service.start_api()
    sender = post_in_background(service.url, os.urandom(UPLOAD_BYTES))
    api.wait_for_log(f"received ({UPLOAD_BYTES} bytes); pausing")
    api.kill()  # the body has arrived; no 202 yet
    sender.join(10)
    dataset_id = re.findall(r"upload (ds-[0-9a-f]{12}) received", api.log())[-1]
    # Nothing a row could refer to: the whole upload is staged in the dataset's folder of the
    # artifact store (never published), and nowhere else.
    [staged] = files(env.artifacts_dir)
    assert re.fullmatch(rf"datasets/{dataset_id}/\.upload\.[0-9a-f]{{8}}\.tmp", staged), staged
    assert (env.artifacts_dir / staged).stat().st_size == UPLOAD_BYTES
    assert files(env.data_dir) == []

    service.overrides["TRAINSERVE_FAILPOINT_UPLOAD_PAUSE_SECONDS"] = "0"
    restarted = service.start_api()
    restarted.wait_for_log(
        "sweep removed 0 unfinished upload(s), 1 folder(s) of deleted datasets, 0 folder(s) of "
        "deleted weights files, 0 folder(s) of deleted jobs, 0 export folder(s) of deleted "
        f"model versions, 0 unrecorded file(s) of finished jobs and datasets: {UPLOAD_BYTES} bytes"
    )
    assert files(env.artifacts_dir) == []
    with service.client() as client:
        assert client.get("/datasets").json() == {"items": [], "total": 0}


def test_sweeps_while_jobs_run_remove_orphans_only(
    env: Env, service: Service, synthetic_cifar: Path, tmp_path: Path
) -> None:
    service.overrides = {
        "TRAINSERVE_SWEEP_INTERVAL_SECONDS": "0.5",
        # Short, so that only the rows protect what is kept: everything the test made before
        # the job runs is aged past it.
        "TRAINSERVE_SWEEP_GRACE_SECONDS": "5",
        "TRAINSERVE_CHECKPOINT_SECONDS": "0.25",
        "TRAINSERVE_FAILPOINT_CHECKPOINT_PAUSE_SECONDS": "0.2",
    }
    api = service.start_api()
    service.start_worker()
    client = service.client()
    ready = final(client, upload(client, colour_archive(tmp_path / "colours.zip", per_class=4)))
    assert ready["status"] == "ready"
    trained = client.post("/jobs", json={**TRAINING, "epochs": 1}).json()
    assert run_to_end(client, trained["id"])["status"] == "succeeded"
    export = client.get("/models/cifar10/versions/1/export", params={"format": "safetensors"})
    assert export.status_code == 200, export.text
    kept = files(env.data_dir), files(env.artifacts_dir)
    age(env.data_dir, HOUR_S)
    age(env.artifacts_dir, HOUR_S)

    running = client.post("/jobs", json=TRAINING).json()
    checkpoints = env.artifacts_dir / "jobs" / str(running["id"]) / "checkpoints"
    wait_for(checkpoints.is_dir, 60, "the running job wrote no checkpoint")
    logged = len(api.log())
    orphans = [
        write(env.data_dir / "incoming/ds-00000000000a", 5),
        write(env.data_dir / "datasets/ds-00000000000b/upload", 7),
        write(env.artifacts_dir / "jobs/999999/model-attempt1.pt", 11),
        write(env.artifacts_dir / "exports/cifar10/v7/cifar10-v7.onnx", 13),
    ]
    for orphan in orphans:
        age(orphan.parent, HOUR_S)
    wait_for(lambda: not any(o.exists() for o in orphans), 30, "orphans were left")
    # Planted one after another while sweeps run every 0.5 s: one sweep or several took them,
    # each saying so once it has committed, a moment after its files went.
    expected = [1, 1, 0, 1, 1, 0, 36]
    wait_for(lambda: swept(api.log()[logged:]) == expected, 10, f"sweeps logged no {expected}")
    # Uploads arrive while sweeps run, and are decoded.
    arriving = upload(client, colour_archive(tmp_path / "more.zip", per_class=4))
    assert final(client, arriving)["status"] == "ready"
    sweeps_before = api.log().count("sweep removed")
    done = run_to_end(client, running["id"])
    assert (done["status"], done["attempts"], done["error"]) == ("succeeded", 1, None)
    time.sleep(1.5)  # a few more sweeps after it ended
    assert api.log().count("sweep removed") == sweeps_before  # nothing more was found to remove

    # All that rows refer to is still there, and works.
    data_files, artifact_files = files(env.data_dir), files(env.artifacts_dir)
    assert set(kept[0]) <= set(data_files)
    assert set(kept[1]) <= set(artifact_files)
    image = noisy_png((200, 20, 20), seed=1, size=24)
    answer = client.post(
        "/predict", files={"file": ("r.png", image)}, params={"job_id": trained["id"]}
    )
    assert answer.status_code == 200, answer.text
    again = client.get("/models/cifar10/versions/1/export", params={"format": "safetensors"})
    assert (again.status_code, again.content) == (200, export.content)


def test_the_sweep_command_says_what_it_removed(env: Env, service: Service) -> None:
    environment = service.environment()
    subprocess.run([TRAINSERVE, "migrate"], env=environment, check=True, capture_output=True)
    write(env.data_dir / "incoming/ds-00000000000a", 5)
    write(env.artifacts_dir / "jobs/12/model-attempt1.pt", 11)

    def sweep(*args: str) -> str:
        done = subprocess.run(
            [TRAINSERVE, "sweep", *args], env=environment, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert sweep() == (  # within the default grace period of an hour: all kept
        "removed 0 unfinished upload(s), 0 folder(s) of deleted datasets, 0 folder(s) of "
        "deleted weights files, 0 folder(s) of deleted jobs, 0 export folder(s) of deleted "
        "model versions, 0 unrecorded file(s) of finished jobs and datasets: 0 bytes\n"
    )
    assert sweep("--grace", "0") == (
        "removed 1 unfinished upload(s), 0 folder(s) of deleted datasets, 0 folder(s) of "
        "deleted weights files, 1 folder(s) of deleted jobs, 0 export folder(s) of deleted "
        "model versions, 0 unrecorded file(s) of finished jobs and datasets: 16 bytes\n"
    )
    assert files(env.data_dir) == files(env.artifacts_dir) == []
