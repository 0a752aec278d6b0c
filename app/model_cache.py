"""Trained models held in memory by the API, loaded once each, least recently used dropped."""

import threading
from collections import OrderedDict
from pathlib import Path

from app.ml.predictor import Predictor


class ModelCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._models: OrderedDict[int, Predictor] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, job_id: int, path: Path) -> Predictor:
        """The predictor for job_id, loading it from path on first use."""
        with self._lock:
            predictor = self._models.get(job_id)
            if predictor is None:
                predictor = Predictor.from_file(path)
                self._models[job_id] = predictor
                while len(self._models) > self.capacity:
                    self._models.popitem(last=False)
            self._models.move_to_end(job_id)
            return predictor

    def __len__(self) -> int:
        return len(self._models)
