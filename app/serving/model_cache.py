"""Trained models held in memory by the API, loaded once each, least recently used dropped.

A model file is trusted only after its sha256 matches the one the worker stored with the job
(the artifact store checks it). Each cached model comes with the batcher that serves its
predictions. Loads run on threads of their own, one per model at a time: the requests waiting
for it await its outcome, holding none of the API's threads, and a failure is remembered for a
few seconds rather than tried again by each of them.
"""

import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor

import torch

from app.errors import Unavailable
from app.ml.predictor import Predictor
from app.serving.batcher import Batcher
from app.serving.lookup import ServedModel
from app.storage.health import StoreHealth
from app.storage.store import ArtifactDamaged, ArtifactMissing, ArtifactStore, StoreError

log = logging.getLogger("trainserve.api")

ModelKey = tuple[int, str | None]  # the job, and its model file's sha256


# A model that failed to load is answered 503 at once for this long rather than fetched again
# by every request: during an outage of the store each would wait out its own timeouts.
FAILURE_REMEMBERED_S = 5.0
# Models loaded at once (each a download and a torch.load); requests waiting for one hold no
# thread at all (they await its future).
LOADER_THREADS = 4


class ModelCache:
    def __init__(
        self, capacity: int, *, device: torch.device, max_batch: int, max_wait_s: float
    ) -> None:
        self.capacity = capacity
        self.device = device
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        # One thread runs every forward pass: torch gets the cores, the event loop none of it.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self.loader = ThreadPoolExecutor(max_workers=LOADER_THREADS, thread_name_prefix="load")
        # Keyed by the job and its file's sha256: on SQLite a deleted job's id can be given to
        # a new job, whose model must not be answered by the old one.
        self._models: OrderedDict[ModelKey, Batcher] = OrderedDict()
        self._lock = threading.Lock()  # held only to look up and change the dicts, never to load
        # The one load in flight of each model: every request for it shares its outcome.
        self._loading: dict[ModelKey, Future[Batcher]] = {}
        # Models whose load failed a moment ago: (until when, in monotonic time; the error).
        self._failed: dict[ModelKey, tuple[float, Unavailable]] = {}

    def get(
        self, served: ServedModel, store: ArtifactStore, health: StoreHealth | None = None
    ) -> Batcher:
        """The batcher serving a job's model, verified and loaded from its file on first use."""
        return self.loading(served, store, health).result()

    def loading(
        self, served: ServedModel, store: ArtifactStore, health: StoreHealth | None = None
    ) -> "Future[Batcher]":
        """The batcher serving a job's model, as a future: done when it is cached; else the
        load in flight for that model (one at a time, its outcome shared by every request
        waiting for it), or a new one, which fails at once (503) while `health` says the store
        cannot be used. A failure is answered again for FAILURE_REMEMBERED_S."""
        key = (served.job_id, served.model_sha256)
        with self._lock:
            batcher = self._models.get(key)
            if batcher is not None:
                self._models.move_to_end(key)
                return _done(batcher)
            failed = self._failed.get(key)
            if failed is not None and failed[0] > time.monotonic():
                return _done(failed[1])
            future = self._loading.get(key)
            if future is None:
                future = self.loader.submit(self._load, key, served, store, health)
                self._loading[key] = future
            return future

    def _load(
        self, key: ModelKey, served: ServedModel, store: ArtifactStore, health: StoreHealth | None
    ) -> Batcher:
        try:
            problem = None if health is None else health.problem()
            if problem is not None:
                raise Unavailable(f"{served.label}: its model file cannot be read: {problem}")
            predictor = load_verified(served, store, self.device)
        except Unavailable as exc:
            with self._lock:
                self._failed[key] = (time.monotonic() + FAILURE_REMEMBERED_S, exc)
                self._loading.pop(key, None)
            raise
        except BaseException:
            with self._lock:
                self._loading.pop(key, None)
            raise
        batcher = Batcher(predictor, self.executor, self.max_batch, self.max_wait_s)
        evicted = []
        with self._lock:  # in before the load is forgotten: a later request finds it there
            self._models[key] = batcher
            self._failed.pop(key, None)
            self._loading.pop(key, None)
            while len(self._models) > self.capacity:
                evicted.append(self._models.popitem(last=False)[1])
        for old in evicted:
            # Requests already queued on it are still answered; then nothing refers to it.
            old.close()
        return batcher

    def cached(self, served: ServedModel) -> Batcher | None:
        """The batcher for the served model if it is already loaded, else None (non-blocking:
        it never waits for a load)."""
        key = (served.job_id, served.model_sha256)
        with self._lock:
            batcher = self._models.get(key)
            if batcher is not None:
                self._models.move_to_end(key)
            return batcher

    def __len__(self) -> int:
        return len(self._models)


def _done(outcome: Batcher | Unavailable) -> "Future[Batcher]":
    future: Future[Batcher] = Future()
    if isinstance(outcome, Unavailable):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
    return future


def load_verified(served: ServedModel, store: ArtifactStore, device: torch.device) -> Predictor:
    """The served model's file, checked against its sha256 and loaded; 503 naming it if not."""
    key = served.model_path
    try:
        # Checked and loaded from the same open file: no window in which it could change.
        with store.open(key, served.model_sha256) as file:
            data = file.read()
    except ArtifactMissing as exc:
        raise Unavailable(f"{served.label}: its model file is missing ({exc})") from None
    except ArtifactDamaged as exc:
        log.error("%s: %s", served.label, exc)
        raise Unavailable(
            f"{served.label}: its model file is damaged: its sha256 does not match the one "
            "recorded when it was written"
        ) from None
    except StoreError as exc:
        raise Unavailable(f"{served.label}: its model file cannot be read: {exc}") from None
    try:
        return Predictor.from_bytes(data, device)
    except Exception as exc:
        log.error("%s: model file %s does not load: %s", served.label, key, exc)
        raise Unavailable(f"{served.label}: its model file cannot be loaded") from None
