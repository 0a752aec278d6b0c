"""The registry end to end: a real API with two server processes, a real worker, continuous
prediction load. A throwaway job never takes over /predict; a promotion does, within a second
in every server process, with no failed request; a rollback is one move back and is recorded."""

import io
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import Env, synthetic_split
from tests.e2e.conftest import START_TIMEOUT_S, TRAINSERVE, Service, wait_for
from tests.e2e.hostile_inputs import zip_of

pytestmark = pytest.mark.e2e

ADMIN = "registry-admin-key"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
# Both on the same 100 test images (the synthetic set's whole test split).
GOOD_JOB = {"epochs": 3, "batch_size": 16, "learning_rate": 0.01, "seed": 1}
THROWAWAY_JOB = {"epochs": 1, "max_train_samples": 200, "learning_rate": 1e-5, "seed": 2}
LOAD_THREADS = 4
SWITCH_LIMIT_S = 1.0  # an alias move reaches every server process this fast


@dataclass(frozen=True)
class Answer:
    sent_at: float  # time.monotonic() when the request was sent
    status: int
    version: int | None


class Load:
    """Predictions without pause from several threads, each request on a new connection so
    that both server processes take them; every answer kept."""

    def __init__(self, url: str, image: bytes) -> None:
        self.url, self.image = url, image
        self.answers: list[Answer] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run) for _ in range(LOAD_THREADS)]

    def __enter__(self) -> "Load":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def _run(self) -> None:
        no_reuse = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=self.url, headers=AUTH, limits=no_reuse, timeout=30) as client:
            while not self.stop.is_set():
                sent_at = time.monotonic()
                try:
                    response = client.post("/predict", files={"file": ("x.png", self.image)})
                except httpx.TransportError:
                    self.answers.append(Answer(sent_at, 0, None))
                    continue
                version = response.json().get("version") if response.status_code == 200 else None
                self.answers.append(Answer(sent_at, response.status_code, version))

    def since(self, moment: float) -> list[Answer]:
        return [a for a in list(self.answers) if a.sent_at >= moment]


def png() -> bytes:
    pixels = synthetic_split(1, seed=21)[0][0].transpose(1, 2, 0)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def colour_png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), colour, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def train(client: httpx.Client, body: Mapping[str, object]) -> dict[str, object]:
    job_id = client.post("/jobs", json=body).json()["id"]
    job: dict[str, object] = wait_for(
        lambda: (job := client.get(f"/jobs/{job_id}").json())["status"] == "succeeded" and job,
        180,
        f"job {job_id} never succeeded",
    )  # type: ignore[assignment]
    return job


def switch_time(load: Load, moved_at: float, until: float, version: int) -> float:
    """Seconds from the alias move until every request sent (before `until`) answered
    `version`."""
    late = [a.sent_at for a in load.since(moved_at) if a.sent_at < until and a.version != version]
    return (max(late) - moved_at) if late else 0.0


def test_a_throwaway_job_never_takes_over_and_promotion_is_yours(
    env: Env, service: Service, synthetic_cifar: Path
) -> None:
    service.overrides["TRAINSERVE_ADMIN_KEY"] = ADMIN
    api = service.start("api", TRAINSERVE, "api", "--port", str(service.port), "--workers", "2")
    service.wait_until_up(api)
    wait_for(
        lambda: api.log().count("Application startup complete") == 2,
        START_TIMEOUT_S,
        f"the second server process never started:\n{api.log()}",
    )
    service.start_worker()
    client = httpx.Client(base_url=service.url, headers=AUTH, timeout=30)

    good = train(client, GOOD_JOB)
    production = client.get("/models/cifar10").json()
    assert production["aliases"] == {"production": 1}

    with Load(service.url, png()) as load:
        throwaway = train(client, THROWAWAY_JOB)
        time.sleep(2 * SWITCH_LIMIT_S)  # longer than any server process keeps a lookup
        v2 = client.get("/models/cifar10/versions/2").json()
        assert v2["job_id"] == throwaway["id"] and v2["aliases"] == []
        assert v2["promotion"] == (
            f"not promoted: {100 * throwaway['test_accuracy']:.1f}% is below production v1's "  # type: ignore[operator]
            f"{100 * good['test_accuracy']:.1f}% on the same 100 test images"  # type: ignore[operator]
        )
        before_promotion = list(load.answers)

        promoted = client.put("/models/cifar10/aliases/production", json={"version": 2})
        promoted_at = time.monotonic()
        assert promoted.status_code == 200, promoted.text
        wait_for(lambda: len(load.since(promoted_at + 2 * SWITCH_LIMIT_S)) > 20, 30, "no load")

        rolled_back = client.put("/models/cifar10/aliases/production", json={"version": 1})
        rolled_back_at = time.monotonic()
        assert rolled_back.status_code == 200, rolled_back.text
        wait_for(lambda: len(load.since(rolled_back_at + 2 * SWITCH_LIMIT_S)) > 20, 30, "no load")

    assert {a.status for a in load.answers} == {200}, "a request failed"
    assert {a.version for a in before_promotion} == {1}  # v2 never answered before its promotion
    to_v2 = switch_time(load, promoted_at, rolled_back_at, 2)
    after_promotion = [a for a in load.since(promoted_at) if a.sent_at < rolled_back_at]
    back_to_v1 = switch_time(load, rolled_back_at, float("inf"), 1)
    assert to_v2 <= SWITCH_LIMIT_S and back_to_v1 <= SWITCH_LIMIT_S
    assert {a.version for a in after_promotion if a.sent_at > promoted_at + SWITCH_LIMIT_S} == {2}

    history = client.get("/models/cifar10/aliases/production/history").json()
    assert [(m["from_version"], m["to_version"], m["moved_by"]) for m in history] == [
        (2, 1, "admin"),
        (1, 2, "admin"),
        (None, 1, f"job {good['id']}"),
    ]
    print(
        f"\nv1 (job {good['id']}): {100 * good['test_accuracy']:.1f}%, v2 (job "  # type: ignore[operator]
        f"{throwaway['id']}): {100 * throwaway['test_accuracy']:.1f}%; "  # type: ignore[operator]
        f"{len(load.answers)} predictions, none failed, {len(before_promotion)} by v1 while v2 "
        f"trained and after; every request answered by v2 {to_v2:.2f} s after the promotion "
        f"and by v1 {back_to_v1:.2f} s after the rollback (2 server processes)"
    )

    # A job on an uploaded dataset never changes what /predict serves by default.
    archive = zip_of(
        {
            f"train/{name}/{i}.png": colour_png(colour)
            for name, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220)))
            for i in range(6)
        }
    )
    upload = client.post("/datasets", files={"file": ("colours.zip", archive)})
    assert upload.status_code == 202, upload.text
    dataset = upload.json()["id"]
    wait_for(lambda: client.get(f"/datasets/{dataset}").json()["status"] == "ready", 120, "ingest")
    uploaded = train(client, {"dataset": dataset, "epochs": 1, "batch_size": 4})
    assert uploaded["config"]["register_as"] is None  # type: ignore[index]
    assert [m["name"] for m in client.get("/models").json()] == ["cifar10"]
    answer = client.post("/predict", files={"file": ("x.png", png())}).json()
    assert (answer["model"], answer["version"]) == ("cifar10", 1)
    client.close()
