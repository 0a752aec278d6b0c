"""Predictions off the event loop, with concurrent requests gathered into batches.

Each served model has a batcher: requests queue up, and one task takes everything waiting (up to
`max_batch` images, waiting at most `max_wait_s` for more once the first has arrived) into a
single forward pass on a dedicated thread, so the event loop never runs torch.
"""

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import torch

from app.ml.predictor import Prediction, Predictor

log = logging.getLogger("trainserve.inference")


@dataclass
class _Request:
    images: torch.Tensor
    answer: asyncio.Future[list[Prediction]] = field(repr=False)


class Batcher:
    """Gathers concurrent requests for one predictor into batched forward passes."""

    def __init__(
        self, predictor: Predictor, executor: ThreadPoolExecutor, max_batch: int, max_wait_s: float
    ) -> None:
        self.predictor = predictor
        self.executor = executor
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.queue: asyncio.Queue[_Request] = asyncio.Queue()
        self.batch_sizes: list[int] = []  # the last few, for tests and diagnostics
        self._task: asyncio.Task[None] | None = None

    async def predict(self, images: torch.Tensor) -> list[Prediction]:
        """Predictions for a uint8 batch (N, 3, H, W), exactly as a forward pass of it alone."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._serve())
        answer: asyncio.Future[list[Prediction]] = asyncio.get_running_loop().create_future()
        await self.queue.put(_Request(images, answer))
        return await answer

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self.queue.get()
            batch = [first]
            size = len(first.images)
            deadline = loop.time() + self.max_wait_s
            while size < self.max_batch:
                try:
                    nxt = self.queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        nxt = await asyncio.wait_for(self.queue.get(), remaining)
                    except TimeoutError:
                        break
                batch.append(nxt)
                size += len(nxt.images)
            await self._run(batch, size)

    async def _run(self, batch: list[_Request], size: int) -> None:
        log.debug("forward pass over %d images from %d requests", size, len(batch))
        self.batch_sizes = [*self.batch_sizes[-99:], size]
        images = torch.cat([request.images for request in batch])
        try:
            predictions = await asyncio.get_running_loop().run_in_executor(
                self.executor, self.predictor.predict, images
            )
        except Exception as exc:
            for request in batch:
                if not request.answer.done():
                    request.answer.set_exception(exc)
            return
        start = 0
        for request in batch:
            count = len(request.images)
            if not request.answer.done():  # its client may have gone
                request.answer.set_result(predictions[start : start + count])
            start += count
