"""The model cache loads each model once however many requests want it at the same time, and
they share the outcome, a failure too; a failure is answered again for a few seconds without
reading the store; and while the store's health says it cannot be used, nothing is read from
it and the answer is a 503 naming the store."""

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
import torch

from app.errors import Unavailable
from app.ml.checkpoints import save_model
from app.ml.nets import TutorialCNN
from app.serving.lookup import ServedModel
from app.serving.model_cache import ModelCache
from app.storage.health import StoreHealth
from app.storage.local import LocalFolder

KEY = "jobs/1/model-attempt1.pt"


class SlowFolder(LocalFolder):
    """A local folder whose reads wait for `release` and are counted; its health is `answer`."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.release = threading.Event()
        self.opened = 0
        self.answer: str | None = None

    @contextlib.contextmanager
    def open(self, key: str, sha256: str | None) -> Iterator[BinaryIO]:
        self.opened += 1
        self.release.wait(timeout=30)
        with super().open(key, sha256) as file:
            yield file

    def problem(self, *, writes: bool = False) -> str | None:
        return self.answer


def cache() -> ModelCache:
    return ModelCache(2, device=torch.device("cpu"), max_batch=8, max_wait_s=0.001)


def served(store: LocalFolder) -> ServedModel:
    sha256 = save_model(
        store.root / KEY,
        TutorialCNN().eval(),
        arch="tutorial_cnn",
        classes=[f"c{i}" for i in range(10)],
        image_size=(32, 32),
    )
    return ServedModel(1, KEY, sha256)


def test_requests_for_one_model_share_its_one_load(tmp_path: Path) -> None:
    store, models = SlowFolder(tmp_path), cache()
    model = served(store)
    waiting = [models.loading(model, store) for _ in range(20)]
    store.release.set()
    batchers = {id(future.result(timeout=30)) for future in waiting}
    assert (len(batchers), store.opened) == (1, 1)
    assert models.cached(model) is waiting[0].result()


def test_a_failure_is_shared_and_answered_again_without_reading(tmp_path: Path) -> None:
    store, models = SlowFolder(tmp_path), cache()
    missing = ServedModel(2, "jobs/2/model-attempt1.pt", "0" * 64)
    waiting = [models.loading(missing, store) for _ in range(5)]
    store.release.set()
    for future in waiting:
        with pytest.raises(Unavailable) as failed:
            future.result(timeout=30)
        assert failed.value.message == (
            f"job 2: its model file is missing (artifact store {tmp_path}: "
            "jobs/2/model-attempt1.pt is missing)"
        )
    with pytest.raises(Unavailable):
        models.get(missing, store)
    assert store.opened == 1


def test_nothing_is_read_while_the_store_cannot_be_used(tmp_path: Path) -> None:
    store, models = SlowFolder(tmp_path), cache()
    model = served(store)
    store.answer = "artifact store s3://b at http://h: cannot be reached (refused)"
    with pytest.raises(Unavailable) as failed:
        models.get(model, store, StoreHealth(store))
    assert failed.value.message == (
        "job 1: its model file cannot be read: artifact store s3://b at http://h: cannot be "
        "reached (refused)"
    )
    assert store.opened == 0
