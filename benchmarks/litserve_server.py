"""LitServe serving the same model with its own batching: one inference worker, up to 64
images a batch, the image as the multipart field `file` (runs in its own virtual environment,
made by benchmarks/peers.py).

Usage: python benchmarks/litserve_server.py MODEL_FILE PORT
"""

import sys

import litserve as ls
import torch
from fastapi import Request
from peer_model import classify, load, pixels

MAX_BATCH = 64
# How long a batch waits to fill: LitServe's 0 busy-polls its queue, taking a core of two.
BATCH_TIMEOUT_S = 0.005


class ImageClassifier(ls.LitAPI):  # type: ignore[misc]
    def setup(self, device: str) -> None:
        self.saved = load(sys.argv[1])

    def decode_request(self, request: Request) -> torch.Tensor:
        # The parsed form, handed over to this inference process.
        return pixels(request["file"].file.read())  # type: ignore[index]

    def batch(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(inputs)

    def predict(self, batch: torch.Tensor) -> list[dict[str, object]]:
        return classify(self.saved, batch)

    def unbatch(self, output: list[dict[str, object]]) -> list[dict[str, object]]:
        return output

    def encode_response(self, output: dict[str, object]) -> dict[str, object]:
        return output


if __name__ == "__main__":
    api = ImageClassifier(max_batch_size=MAX_BATCH, batch_timeout=BATCH_TIMEOUT_S)
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1, timeout=60)
    server.run(port=int(sys.argv[2]), log_level="warning", generate_client_file=False)
