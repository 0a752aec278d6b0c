"""A dataset whose decoding dies (a poisonous upload that crashes the decoder or exhausts memory,
or a worker killed while it decodes) is tried again, then fails after exactly max_attempts with
a message that says how the decoding died; every attempt shows in GET /datasets/{id}."""

import os
import re
import signal
from pathlib import Path

import httpx
import pytest

from tests.api.test_datasets import colour_archive
from tests.conftest import Env
from tests.e2e.conftest import Process, Service, wait_for

pytestmark = pytest.mark.e2e

MAX_ATTEMPTS = 3
GIVING_UP = (
    "decoding gave up after 3 attempts: the last time, {what}; the upload may crash the decoder "
    "or need more memory than a worker has"
)
KILLED = r"the process decoding it was killed by SIGKILL \(peak memory \d+ MiB\)"
LOST = "the worker decoding it stopped without a word (killed, or out of memory?)"


def start(service: Service, **overrides: str) -> httpx.Client:
    service.overrides = {
        "TRAINSERVE_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        "TRAINSERVE_LEASE_SECONDS": "1.5",
        "TRAINSERVE_HEARTBEAT_SECONDS": "0.2",
        # Holds every decoding open, so that each kill lands inside one.
        "TRAINSERVE_FAILPOINT_DECODE_PAUSE_SECONDS": "60",
        **overrides,
    }
    service.start_api()
    return service.client()


def upload(client: httpx.Client, archive: Path) -> str:
    with archive.open("rb") as file:
        response = client.post("/datasets", files={"file": (archive.name, file)})
    assert response.status_code == 202, response.text
    dataset_id: str = response.json()["id"]
    return dataset_id


def decoder_pid(worker: Process, dataset_id: str, attempt: int) -> int:
    """The decoding process of `attempt`, once it has paused inside the decoding."""
    worker.wait_for_log(f"dataset {dataset_id}: decoder pausing", timeout_s=60)
    started = rf"dataset {dataset_id}: decoding \S+ in process (\d+) \(attempt {attempt} of 3\)"
    found = re.search(started, worker.log())
    assert found is not None, worker.log()
    return int(found.group(1))


def decoder_pauses(worker: Process, dataset_id: str) -> int:
    return worker.log().count(f"dataset {dataset_id}: decoder pausing")


def is_gone(pid: int) -> bool:
    """The process has ended (a zombie left for a reaper counts as ended)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def final(client: httpx.Client, dataset_id: str) -> dict[str, object]:
    dataset = wait_for(
        lambda: (
            (d := client.get(f"/datasets/{dataset_id}").json())["status"] in ("ready", "failed")
            and d
        ),
        90,
        f"dataset {dataset_id} never ended",
    )
    assert isinstance(dataset, dict)
    return dataset


def test_a_decoder_killed_on_every_attempt_fails_the_dataset_after_max_attempts(
    env: Env, service: Service, tmp_path: Path
) -> None:
    client = start(service)
    worker = service.start_worker()
    dataset_id = upload(client, colour_archive(tmp_path / "poison.zip", per_class=4))
    for attempt in range(1, MAX_ATTEMPTS + 1):
        wait_for(
            lambda: decoder_pauses(worker, dataset_id) == attempt,  # noqa: B023
            60,
            f"attempt {attempt} never paused:\n{worker.log()}",
        )
        pid = int(
            re.findall(rf"dataset {dataset_id}: decoding \S+ in process (\d+)", worker.log())[-1]
        )
        if attempt > 1:  # between attempts, the user sees how the last one ended
            shown = client.get(f"/datasets/{dataset_id}").json()
            assert (shown["status"], shown["attempts"], shown["error"]) == (
                "ingesting",
                attempt,
                None,
            )
            assert [a["outcome"] for a in shown["attempt_history"]] == ["decoder died"] * (
                attempt - 1
            ) + ["decoding"]
        os.kill(pid, signal.SIGKILL)  # as a decoder crash or the kernel's OOM killer would

    failed = final(client, dataset_id)
    assert failed["status"] == "failed"
    assert isinstance(failed["error"], str)
    assert re.fullmatch(re.escape(GIVING_UP).replace(re.escape("{what}"), KILLED), failed["error"])
    assert failed["attempts"] == failed["max_attempts"] == MAX_ATTEMPTS
    history = failed["attempt_history"]
    assert isinstance(history, list)
    assert [a["attempt"] for a in history] == [1, 2, 3]
    assert [a["outcome"] for a in history] == ["decoder died"] * 3
    assert all(re.fullmatch(KILLED, a["detail"]) for a in history)
    assert len({a["worker_id"] for a in history}) == 1  # the worker itself survived each one
    assert worker.popen.poll() is None
    assert decoder_pauses(worker, dataset_id) == MAX_ATTEMPTS  # no fourth attempt
    for attempt in (1, 2):
        assert f"dataset {dataset_id} queued again after attempt {attempt} of 3" in worker.log()
    assert f"dataset {dataset_id} failed after attempt 3 of 3" in worker.log()
    assert not (env.artifacts_dir / "datasets" / dataset_id).exists()  # nothing kept of it
    # The worker goes on to other work: a dataset that decodes is made ready.
    service.overrides["TRAINSERVE_FAILPOINT_DECODE_PAUSE_SECONDS"] = "0"
    worker.stop()
    service.start_worker("healthy")
    healthy = final(client, upload(client, colour_archive(tmp_path / "fine.zip", per_class=4)))
    assert (healthy["status"], healthy["attempts"]) == ("ready", 1)


def test_a_worker_killed_while_it_decodes_on_every_attempt_fails_the_dataset(
    env: Env, service: Service, tmp_path: Path
) -> None:
    client = start(service)
    dataset_id = upload(client, colour_archive(tmp_path / "poison.zip", per_class=4))
    for attempt in range(1, MAX_ATTEMPTS + 1):
        victim = service.start_worker(f"victim{attempt}")
        pid = decoder_pid(victim, dataset_id, attempt)
        victim.kill()
        # Its decoding process ends with it: no orphan writes beside the next attempt's.
        wait_for(lambda: is_gone(pid), 10, f"decoder {pid} outlived its worker")  # noqa: B023

    successor = service.start_worker("successor")
    failed = final(client, dataset_id)
    assert failed["status"] == "failed"
    assert failed["error"] == GIVING_UP.format(what=LOST)
    assert failed["attempts"] == MAX_ATTEMPTS
    history = failed["attempt_history"]
    assert isinstance(history, list)
    assert [(a["attempt"], a["outcome"], a["detail"]) for a in history] == [
        (n, "worker lost", LOST) for n in (1, 2, 3)
    ]
    assert len({a["worker_id"] for a in history}) == 3
    assert all(a["ended_at"] is not None for a in history)
    successor.wait_for_log("datasets whose worker was lost: 0 queued again, 1 failed")
    assert decoder_pauses(successor, dataset_id) == 0  # no fourth attempt
    assert not (env.artifacts_dir / "datasets" / dataset_id).exists()


def test_a_stopping_worker_ends_its_decoder_and_hands_the_dataset_back_uncounted(
    service: Service, tmp_path: Path
) -> None:
    client = start(service)
    dataset_id = upload(client, colour_archive(tmp_path / "colours.zip", per_class=4))
    stopping = service.start_worker("stopping")
    pid = decoder_pid(stopping, dataset_id, 1)
    assert stopping.stop(timeout_s=10) == 0  # SIGTERM: it does not wait out the 60 s pause
    assert is_gone(pid)
    assert f"dataset {dataset_id}: the worker is stopping; queued again" in stopping.log()
    queued = client.get(f"/datasets/{dataset_id}").json()
    assert (queued["status"], queued["attempts"], queued["attempt_history"]) == ("queued", 0, [])

    service.overrides["TRAINSERVE_FAILPOINT_DECODE_PAUSE_SECONDS"] = "0"
    service.start_worker("next")
    ready = final(client, dataset_id)
    assert (ready["status"], ready["attempts"]) == ("ready", 1)
