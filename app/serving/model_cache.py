"""Trained models held in memory by the API, loaded once each, least recently used dropped.

A model file is trusted only after its sha256 matches the one the worker stored with the job
(the artifact store checks it). Each cached model comes with the batcher that serves its
predictions.
"""

import logging
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import torch

from app.errors import Unavailable
from app.ml.predictor import Predictor
from app.serving.batcher import Batcher
from app.serving.lookup import ServedModel
from app.storage.store import ArtifactDamaged, ArtifactMissing, ArtifactStore, StoreError

log = logging.getLogger("trainserve.api")


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
        # Keyed by the job and its file's sha256: on SQLite a deleted job's id can be given to
        # a new job, whose model must not be answered by the old one.
        self._models: OrderedDict[tuple[int, str | None], Batcher] = OrderedDict()
        self._lock = threading.Lock()  # held only to look up and change the dicts, never to load
        # One lock per model being loaded: its requests wait for that one load, others not at all.
        self._loading: dict[tuple[int, str | None], threading.Lock] = {}

    def get(self, served: ServedModel, store: ArtifactStore) -> Batcher:
        """The batcher serving a job's model, verified and loaded from its file on first use:
        a slow download holds back the requests for that model only."""
        key = (served.job_id, served.model_sha256)
        batcher = self.cached(served)
        if batcher is not None:
            return batcher
        with self._lock:
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            batcher = self.cached(served)  # loaded while this request waited
            if batcher is not None:
                return batcher
            try:
                predictor = load_verified(served, store, self.device)
                batcher = Batcher(predictor, self.executor, self.max_batch, self.max_wait_s)
                with self._lock:
                    self._models[key] = batcher
                    while len(self._models) > self.capacity:
                        # Requests still waiting on an evicted model keep it alive until they end.
                        self._models.popitem(last=False)
                return batcher
            finally:
                with self._lock:  # after the model is in: a later request finds it there
                    self._loading.pop(key, None)

    def cached(self, served: ServedModel) -> Batcher | None:
        """The batcher for the served model if it is already loaded, else None (non-blocking)."""
        key = (served.job_id, served.model_sha256)
        with self._lock:
            batcher = self._models.get(key)
            if batcher is not None:
                self._models.move_to_end(key)
            return batcher

    def __len__(self) -> int:
        return len(self._models)


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
