"""The model cache: an evicted model is freed, and its batcher answers what was queued first."""

import asyncio
import gc
import weakref
from pathlib import Path

import torch
from starlette.concurrency import run_in_threadpool

from app.ml.checkpoints import save_model
from app.ml.nets import TutorialCNN
from app.serving.lookup import ServedModel
from app.serving.model_cache import ModelCache
from app.storage.local import LocalFolder
from tests.serving.test_batching import pixels, png

CLASSES = [f"c{i}" for i in range(10)]


def saved_models(artifacts_dir: Path, count: int) -> list[ServedModel]:
    served = []
    for job_id in range(1, count + 1):
        path = f"jobs/{job_id}/model.pt"
        sha256 = save_model(
            artifacts_dir / path,
            TutorialCNN(),
            arch="tutorial_cnn",
            classes=CLASSES,
            image_size=(32, 32),
        )
        served.append(ServedModel(job_id, path, sha256))
    return served


def test_an_evicted_model_is_freed_once_its_queued_requests_are_answered(tmp_path: Path) -> None:
    cache = ModelCache(2, device=torch.device("cpu"), max_batch=8, max_wait_s=0)
    first, *others = saved_models(tmp_path, 3)
    store = LocalFolder(tmp_path)
    image = pixels(png(0)).unsqueeze(0)

    async def run() -> tuple[weakref.ref[object], weakref.ref[object], int]:
        batcher = await run_in_threadpool(cache.get, first, store)
        await batcher.predict_pixels(image)  # its task is running, waiting for the next request
        task = batcher._task
        assert task is not None
        # Queued before the eviction: still answered after it.
        queued = asyncio.ensure_future(batcher.predict_pixels(image))
        for served in others:  # one more than the cache holds: the first is evicted
            await run_in_threadpool(cache.get, served, store)
        answered = len(await queued)
        await asyncio.wait({task}, timeout=5)
        assert task.done()  # the evicted batcher's task has ended
        return weakref.ref(batcher), weakref.ref(batcher.predictor), answered

    batcher_ref, predictor_ref, answered = asyncio.run(run())
    assert answered == 1
    assert len(cache) == 2 and cache.cached(first) is None
    gc.collect()
    assert batcher_ref() is None
    assert predictor_ref() is None


def test_a_request_on_a_batcher_closed_meanwhile_is_answered(tmp_path: Path) -> None:
    cache = ModelCache(1, device=torch.device("cpu"), max_batch=8, max_wait_s=0)
    (served,) = saved_models(tmp_path, 1)
    store = LocalFolder(tmp_path)
    image = pixels(png(0)).unsqueeze(0)

    async def run() -> int:
        batcher = await run_in_threadpool(cache.get, served, store)
        await batcher.predict_pixels(image)
        batcher.close()  # evicted after this request had it in hand
        await asyncio.sleep(0)
        return len(await asyncio.wait_for(batcher.predict_pixels(image), 5))

    assert asyncio.run(run()) == 1
