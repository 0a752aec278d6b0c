"""Predictions off the event loop, with concurrent requests gathered into batches.

Each served model has a batcher. A request hands it the raw upload bytes (or pixels already
decoded, from the Open Inference Protocol); one task takes every request waiting (up to
`max_batch` images, and for at most `max_wait_s` more once the first has arrived, 0 by default)
and gives them to a dedicated thread, which decodes them and runs one forward pass. While that
pass runs, new requests queue up and form the next batch, so batches grow with the load and a
lone request waits for nothing. The event loop never decodes or runs torch.
"""

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import torch

from app.metrics import PREDICTION_BATCH
from app.ml.predictor import ImageRejected, Prediction, Predictor, decode_image

log = logging.getLogger("trainserve.inference")

RECENT_BATCHES = 100


class UploadRejected(Exception):
    """One upload of a request is not a usable image; `name` says which."""

    def __init__(self, name: str, reason: ImageRejected) -> None:
        super().__init__(f"{name}: {reason}")


# What a request brings: uploads as (name for messages, bytes), or uint8 pixels (N, 3, H, W).
Inputs = list[tuple[str, bytes]] | torch.Tensor


@dataclass
class _Request:
    inputs: Inputs
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
        self.batch_sizes: list[int] = []  # the most recent, for tests and diagnostics
        self._task: asyncio.Task[None] | None = None

    async def predict(self, uploads: list[tuple[str, bytes]]) -> list[Prediction]:
        """Predictions for the uploaded images, as a forward pass of them alone would give.

        Raises UploadRejected naming the first upload that is not a usable image.
        """
        return await self._submit(uploads)

    async def predict_pixels(self, pixels: torch.Tensor) -> list[Prediction]:
        """Predictions for uint8 images (N, 3, H, W) of the model's size, already decoded."""
        return await self._submit(pixels)

    async def _submit(self, inputs: Inputs) -> list[Prediction]:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._serve())
        answer: asyncio.Future[list[Prediction]] = loop.create_future()
        self.queue.put_nowait(_Request(inputs, answer))
        return await answer

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            size = len(batch[0].inputs)
            deadline = loop.time() + self.max_wait_s
            while size < self.max_batch:
                if not self.queue.empty():
                    batch.append(self.queue.get_nowait())
                elif (remaining := deadline - loop.time()) > 0:
                    try:
                        batch.append(await asyncio.wait_for(self.queue.get(), remaining))
                    except TimeoutError:
                        break
                else:
                    break
                size += len(batch[-1].inputs)
            await self._run(batch)

    async def _run(self, batch: list[_Request]) -> None:
        loop = asyncio.get_running_loop()
        try:
            outcomes = await loop.run_in_executor(
                self.executor, self._decode_and_predict, [r.inputs for r in batch]
            )
        except Exception as exc:  # the forward pass itself failed: every request learns it
            outcomes = [exc] * len(batch)
        for request, outcome in zip(batch, outcomes, strict=True):
            if request.answer.done():  # its client went away
                continue
            if isinstance(outcome, Exception):
                request.answer.set_exception(outcome)
            else:
                request.answer.set_result(outcome)

    def _decode_and_predict(self, requests: list[Inputs]) -> list[list[Prediction] | Exception]:
        """On the inference thread: decode every request, one forward pass over the valid ones."""
        decoded: list[torch.Tensor | Exception] = []
        for inputs in requests:
            if isinstance(inputs, torch.Tensor):
                decoded.append(inputs)
                continue
            if not inputs:  # stack() takes no empty list
                decoded.append(torch.empty((0, 3, *self.predictor.image_size), dtype=torch.uint8))
                continue
            try:
                decoded.append(torch.stack([self._decode(name, data) for name, data in inputs]))
            except UploadRejected as exc:
                decoded.append(exc)
        valid = [item for item in decoded if not isinstance(item, Exception)]
        count = sum(len(item) for item in valid)
        self.batch_sizes = [*self.batch_sizes[-(RECENT_BATCHES - 1) :], count]
        if count:
            PREDICTION_BATCH.observe(count)
        log.debug("forward pass over %d images from %d requests", count, len(requests))
        predictions = self.predictor.predict(torch.cat(valid)) if count else []
        outcomes: list[list[Prediction] | Exception] = []
        start = 0
        for item in decoded:
            if isinstance(item, Exception):
                outcomes.append(item)
            else:
                outcomes.append(predictions[start : start + len(item)])
                start += len(item)
        return outcomes

    def _decode(self, name: str, data: bytes) -> torch.Tensor:
        try:
            return decode_image(data, self.predictor.image_size)
        except ImageRejected as exc:
            raise UploadRejected(name, exc) from None
