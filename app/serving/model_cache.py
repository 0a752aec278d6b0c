"""Trained models held in memory by the API, loaded once each, least recently used dropped.

A model file is trusted only after its sha256 matches the one the worker stored with the job.
Each cached model comes with the batcher that serves its predictions.
"""

import hashlib
import logging
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from app.errors import Unavailable
from app.ml.predictor import Predictor
from app.serving.batcher import Batcher
from app.serving.lookup import ServedModel

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
        # Held only to read or change _models: requests for loaded models never wait for a load.
        self._lock = threading.Lock()
        # Held for a whole load (seconds, for a large model): one model is loaded at a time,
        # and two requests for the same new model load it once.
        self._loading = threading.Lock()

    def get(self, served: ServedModel, artifacts_dir: Path) -> Batcher:
        """The batcher serving a job's model, verified and loaded from its file on first use."""
        batcher = self.cached(served)
        if batcher is not None:
            return batcher
        with self._loading:
            batcher = self.cached(served)  # loaded while this one waited for its turn
            if batcher is not None:
                return batcher
            predictor = load_verified(served, artifacts_dir, self.device)
            batcher = Batcher(predictor, self.executor, self.max_batch, self.max_wait_s)
            evicted = []
            with self._lock:
                self._models[(served.job_id, served.model_sha256)] = batcher
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


def load_verified(served: ServedModel, artifacts_dir: Path, device: torch.device) -> Predictor:
    """The served model's file, checked against its sha256 and loaded; 503 naming it if not."""
    path = artifacts_dir / served.model_path
    try:
        data = path.read_bytes()
    except OSError:
        raise Unavailable(f"{served.label}: its model file is missing ({path})") from None
    # Hashed and loaded from the same bytes: one read, and no window in which the file could
    # change between the check and the load.
    sha256 = served.model_sha256
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise Unavailable(
            f"{served.label}: its model file is damaged: its sha256 does not match the one "
            "recorded when it was written"
        )
    try:
        return Predictor.from_bytes(data, device)
    except Exception as exc:
        log.error("%s: model file %s does not load: %s", served.label, path, exc)
        raise Unavailable(f"{served.label}: its model file cannot be loaded") from None
