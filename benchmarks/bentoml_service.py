"""BentoML serving the same model: one process, a batchable API (up to 64 images a batch), the
image as the multipart field `images` (runs in its own virtual environment, made by
benchmarks/peers.py).

Usage: MODEL_FILE=... bentoml serve bentoml_service:Classifier --port PORT (from benchmarks/)
"""

import os
from pathlib import Path

import bentoml
import torch
from peer_model import classify, load, pixels

MAX_BATCH = 64
MAX_LATENCY_MS = 1000


# Its access log is off, as the other servers' are.
@bentoml.service(workers=1, logging={"access": {"enabled": False}})
class Classifier:
    def __init__(self) -> None:
        self.saved = load(os.environ["MODEL_FILE"])

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH, max_latency_ms=MAX_LATENCY_MS)  # type: ignore[misc]
    def predict(self, images: list[Path]) -> list[dict[str, object]]:
        batch = torch.stack([pixels(image.read_bytes()) for image in images])
        return classify(self.saved, batch)
