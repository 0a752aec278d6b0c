"""Dynamic batching, the batch endpoint, top-k and model swaps, on concurrent requests."""

import asyncio
import io
import logging
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from app.db import session_scope
from app.jobs.config import JobCreate
from app.jobs.transitions import create_job
from app.main import create_app
from app.ml.checkpoints import load_model
from app.ml.predictor import Predictor
from app.serving.lookup import LOOKUP_TTL_S
from tests.conftest import Env
from workers.worker import Worker


def png(seed: int, size: tuple[int, int] = (32, 32)) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def pixels(data: bytes) -> torch.Tensor:
    return torch.from_numpy(np.array(Image.open(io.BytesIO(data)))).permute(2, 0, 1)


def train(env: Env, seed: int, promote: str = "always") -> int:
    """A CIFAR-10 job trained by a real worker: registered as cifar10, and by default promoted
    to production, which is what /predict answers with."""
    spec = JobCreate.model_validate(
        {"seed": seed, "epochs": 1, "max_train_samples": 40, "device": "cpu", "promote": promote}
    )
    with session_scope(write=True) as session:
        job_id = create_job(session, spec.resolved()).id
    assert Worker(env.settings()).run_once()
    return job_id


def alone(env: Env, job_id: int, data: bytes) -> dict[str, float]:
    """What a forward pass of this one image gives."""
    predictor = Predictor(load_model(env.artifacts_dir / f"jobs/{job_id}/model-attempt1.pt"))
    return predictor.predict(pixels(data).unsqueeze(0))[0].probabilities


def client_for(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")  # type: ignore[arg-type]


def test_concurrent_requests_share_forward_passes_and_get_their_own_answer(
    migrated_env: Env, synthetic_cifar: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="trainserve.inference")
    job_id = train(migrated_env, seed=1)
    images = [png(seed) for seed in range(48)]
    app = create_app()

    async def run() -> list[httpx.Response]:
        async with client_for(app) as client:
            return await asyncio.gather(
                *(
                    client.post("/predict", files={"file": (f"{i}.png", data)})
                    for i, data in enumerate(images)
                )
            )

    responses = asyncio.run(run())
    [batcher] = [b for (job, _sha), b in app.state.model_cache._models.items() if job == job_id]
    assert max(batcher.batch_sizes) > 1  # requests were gathered
    assert sum(batcher.batch_sizes) == 48
    logged = [r.getMessage() for r in caplog.records if r.name == "trainserve.inference"]
    assert len(logged) == len(batcher.batch_sizes)
    assert logged[0].startswith(f"forward pass over {batcher.batch_sizes[0]} images from ")
    for data, response in zip(images, responses, strict=True):
        assert response.status_code == 200, response.text
        body = response.json()
        expected = alone(migrated_env, job_id, data)
        assert list(body["probabilities"]) == list(expected)
        assert list(body["probabilities"].values()) == pytest.approx(
            list(expected.values()), abs=1e-6
        )
        assert body["label"] == max(expected, key=expected.__getitem__)


def test_batch_endpoint_answers_in_order_with_top_k(
    migrated_env: Env, synthetic_cifar: Path
) -> None:
    job_id = train(migrated_env, seed=2)
    images = [png(100 + i) for i in range(10)]
    app = create_app()

    async def run() -> httpx.Response:
        async with client_for(app) as client:
            return await client.post(
                "/predict/batch",
                params={"top_k": 3},
                files=[("files", (f"{i}.png", data)) for i, data in enumerate(images)],
            )

    response = asyncio.run(run())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["job_id"] == job_id
    assert len(body["predictions"]) == 10
    for data, prediction in zip(images, body["predictions"], strict=True):
        expected = alone(migrated_env, job_id, data)
        assert list(prediction["probabilities"].values()) == pytest.approx(
            list(expected.values()), abs=1e-6
        )
        ranked = sorted(expected.items(), key=lambda item: item[1], reverse=True)[:3]
        assert [t["label"] for t in prediction["top_k"]] == [label for label, _ in ranked]
        assert [t["class_index"] for t in prediction["top_k"]] == [
            list(expected).index(label) for label, _ in ranked
        ]
        assert prediction["top_k"][0]["label"] == prediction["label"]


@pytest.mark.parametrize(
    ("files", "params", "detail"),
    [
        (
            [png(1), png(2), png(3, (33, 32)), b""],
            {"resize": "false"},
            "files[2]: the image is 33x32 pixels; this model takes 32x32 (leave out "
            "resize=false to have it resized)",
        ),
        ([png(1), b""], {}, "files[1]: the file is empty"),
        ([png(1)] * 65, {}, "files: at most 64 images per request (got 65)"),
        ([png(1)], {"top_k": 0}, "query.top_k: Input should be greater than or equal to 1"),
    ],
)
def test_batch_endpoint_errors_name_the_image(
    migrated_env: Env,
    synthetic_cifar: Path,
    files: list[bytes],
    params: dict[str, int | str],
    detail: str,
) -> None:
    train(migrated_env, seed=3)

    async def run() -> httpx.Response:
        async with client_for(create_app()) as client:
            return await client.post(
                "/predict/batch",
                params=params,
                files=[("files", (f"{i}.png", data)) for i, data in enumerate(files)],
            )

    response = asyncio.run(run())
    assert response.status_code == 422
    assert response.json()["detail"] == detail


def test_top_k_on_predict_defaults_to_all_and_is_capped(
    migrated_env: Env, synthetic_cifar: Path
) -> None:
    train(migrated_env, seed=4)

    async def run(params: dict[str, int]) -> dict[str, object]:
        async with client_for(create_app()) as client:
            response = await client.post(
                "/predict", params=params, files={"file": ("a.png", png(5))}
            )
            assert response.status_code == 200
            body: dict[str, object] = response.json()
            return body

    everything = asyncio.run(run({}))
    top = everything["top_k"]
    assert isinstance(top, list) and len(top) == 10
    probabilities = [t["probability"] for t in top]
    assert probabilities == sorted(probabilities, reverse=True)
    assert len(asyncio.run(run({"top_k": 2}))["top_k"]) == 2  # type: ignore[arg-type]
    assert len(asyncio.run(run({"top_k": 500}))["top_k"]) == 10  # type: ignore[arg-type]


def test_a_promotion_takes_over_under_load_without_failing_requests(
    migrated_env: Env, synthetic_cifar: Path
) -> None:
    first = train(migrated_env, seed=5)  # cifar10 v1, production
    app = create_app()
    statuses: list[int] = []
    # Each batch of concurrent requests: when it was sent, and the versions that answered it.
    served: list[tuple[float, set[int]]] = []

    async def load(stop: threading.Event) -> None:
        async with client_for(app) as client:
            while not stop.is_set():
                sent_at = time.monotonic()
                batch = await asyncio.gather(
                    *(client.post("/predict", files={"file": ("a.png", png(i))}) for i in range(8))
                )
                statuses.extend(r.status_code for r in batch)
                served.append((sent_at, {r.json().get("version", -1) for r in batch}))
                await asyncio.sleep(0)

    async def promote() -> httpx.Response:
        async with client_for(app) as client:
            return await client.put("/models/cifar10/aliases/production", json={"version": 2})

    def sent_after(moment: float) -> list[set[int]]:
        return [versions for sent_at, versions in list(served) if sent_at > moment]

    stop = threading.Event()
    loader = threading.Thread(target=lambda: asyncio.run(load(stop)))
    loader.start()
    try:
        second = train(migrated_env, seed=6, promote="never")  # v2 finishes under load
        answered_before = len(served)
        moved = asyncio.run(promote())
        moved_at = time.monotonic()
        # A lookup is trusted for LOOKUP_TTL_S from when it began: a batch sent later than
        # that after the move is answered by v2 however long loading v2 takes here.
        deadline = moved_at + 60
        while len(sent_after(moved_at + LOOKUP_TTL_S)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        loader.join()
    assert first != second and moved.status_code == 200, moved.text
    assert set(statuses) == {200}
    assert all(versions == {1} for _, versions in served[:answered_before])  # v2 never took over
    after_the_ttl = sent_after(moved_at + LOOKUP_TTL_S)
    assert len(after_the_ttl) >= 3 and all(versions == {2} for versions in after_the_ttl)
    # Once v2 answered, v1 never did again in a later batch (requests of one batch run at
    # once, so the switch may fall inside one).
    switch = next(i for i, (_, versions) in enumerate(served) if 2 in versions)
    assert all(versions == {2} for _, versions in served[switch + 1 :]), served[switch:]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU behaviour")
def test_inference_device_without_a_gpu() -> None:
    from app.main import inference_device

    assert inference_device("auto") == torch.device("cpu")
    assert inference_device("cpu") == torch.device("cpu")
    with pytest.raises(RuntimeError, match="TRAINSERVE_INFERENCE_DEVICE=cuda but no CUDA GPU"):
        inference_device("cuda")
