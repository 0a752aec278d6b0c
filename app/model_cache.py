"""Trained models held in memory by the API, loaded once each, least recently used dropped.

A model file is trusted only after its sha256 matches the one the worker stored with the job.
"""

import logging
import threading
from collections import OrderedDict
from pathlib import Path

from app.errors import Unavailable
from app.ml.checkpoints import file_sha256
from app.ml.predictor import Predictor

log = logging.getLogger("trainserve.api")


class ModelCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._models: OrderedDict[int, Predictor] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, job_id: int, path: Path, sha256: str | None) -> Predictor:
        """The predictor for job_id, verified and loaded from path on first use."""
        with self._lock:
            predictor = self._models.get(job_id)
            if predictor is None:
                predictor = _load_verified(job_id, path, sha256)
                self._models[job_id] = predictor
                while len(self._models) > self.capacity:
                    self._models.popitem(last=False)
            self._models.move_to_end(job_id)
            return predictor

    def __len__(self) -> int:
        return len(self._models)


def _load_verified(job_id: int, path: Path, sha256: str | None) -> Predictor:
    if not path.is_file():
        raise Unavailable(f"job {job_id}'s model file is missing ({path})")
    if sha256 is not None and file_sha256(path) != sha256:
        raise Unavailable(
            f"job {job_id}'s model file is damaged: its sha256 does not match the one recorded "
            "when it was written"
        )
    try:
        return Predictor.from_file(path)
    except Exception as exc:
        log.error("job %s: model file %s does not load: %s", job_id, path, exc)
        raise Unavailable(f"job {job_id}'s model file cannot be loaded") from None
