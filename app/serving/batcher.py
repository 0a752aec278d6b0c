"""Predictions off the event loop, with concurrent requests gathered into batches.

Each served model has a batcher. A request hands it the raw upload bytes (or pixels already
decoded, from the Open Inference Protocol); one task takes every request waiting (up to
`max_batch` images, and for at most `max_wait_s` more once the first has arrived, 0 by default)
and gives them to a dedicated thread, which decodes them and runs one forward pass. While that
pass runs, new requests queue up and form the next batch, so batches grow with the load and a
lone request waits for nothing. The event loop never decodes or runs torch. A batcher whose model
is dropped from the cache is closed: it answers what is queued, and its task ends.
"""

import asyncio
import contextlib
import contextvars
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import torch

from app.metrics import PREDICTION_BATCH
from app.ml.predictor import DecodedImage, ImageRejected, Prediction, Predictor, decode_image

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
    resize: bool  # uploads of another size than the model's: resized, or refused
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
        self._closed = False
        self._idle = False  # its task waits for a request, and none is queued

    async def predict(
        self, uploads: list[tuple[str, bytes]], *, resize: bool = True
    ) -> list[Prediction]:
        """Predictions for the uploaded images, as a forward pass of them alone would give;
        each says its image's original size. Images of another size than the model's are
        resized as training images were, or refused without `resize`.

        Raises UploadRejected naming the first upload that is not a usable image.
        """
        return await self._submit(uploads, resize)

    async def predict_pixels(self, pixels: torch.Tensor) -> list[Prediction]:
        """Predictions for uint8 images (N, 3, H, W) of the model's size, already decoded."""
        return await self._submit(pixels, resize=False)

    async def _submit(self, inputs: Inputs, resize: bool) -> list[Prediction]:
        loop = asyncio.get_running_loop()
        # A task that close() is stopping would leave this request queued: start another.
        if self._task is None or self._task.done() or self._task.cancelling():
            # Its own context: it serves every request, not the one that happened to start it.
            self._task = loop.create_task(self._serve(), context=contextvars.Context())
        answer: asyncio.Future[list[Prediction]] = loop.create_future()
        self.queue.put_nowait(_Request(inputs, resize, answer))
        return await answer

    def close(self) -> None:
        """Stop serving, from any thread: what is queued is still answered, then the task ends
        (a request that arrives later starts it again, and it ends once that is answered).
        Without it, an evicted model's task would wait forever for a request, and keep it."""
        self._closed = True
        task = self._task
        if task is not None and not task.done():
            # A closed loop (RuntimeError) will never run the task again anyway.
            with contextlib.suppress(RuntimeError):
                task.get_loop().call_soon_threadsafe(self._stop_if_idle)

    def _stop_if_idle(self) -> None:
        # On the event loop: a task that waits on an empty queue holds no request.
        if self._idle and self.queue.empty() and self._task is not None:
            self._task.cancel()

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while not (self._closed and self.queue.empty()):
            self._idle = True
            try:
                first = await self.queue.get()
            finally:
                self._idle = False
            batch = [first]
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
                self.executor, self._decode_and_predict, [(r.inputs, r.resize) for r in batch]
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

    def _decode_and_predict(
        self, requests: list[tuple[Inputs, bool]]
    ) -> list[list[Prediction] | Exception]:
        """On the inference thread: decode every request, one forward pass over the valid ones."""
        decoded: list[tuple[torch.Tensor, list[tuple[int, int]] | None] | Exception] = []
        for inputs, resize in requests:
            if isinstance(inputs, torch.Tensor):
                decoded.append((inputs, None))
                continue
            try:
                images = [self._decode(name, data, resize) for name, data in inputs]
            except UploadRejected as exc:
                decoded.append(exc)
                continue
            height, width = self.predictor.image_size
            pixels = (
                torch.stack([image.pixels for image in images])
                if images
                else torch.empty((0, 3, height, width), dtype=torch.uint8)  # stack() takes none
            )
            decoded.append((pixels, [image.original_size for image in images]))
        valid = [item[0] for item in decoded if not isinstance(item, Exception)]
        count = sum(len(pixels) for pixels in valid)
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
                continue
            pixels, sizes = item
            mine = predictions[start : start + len(pixels)]
            start += len(pixels)
            if sizes is not None:
                mine = [replace(p, original_size=size) for p, size in zip(mine, sizes, strict=True)]
            outcomes.append(mine)
        return outcomes

    def _decode(self, name: str, data: bytes, resize: bool) -> DecodedImage:
        try:
            return decode_image(data, self.predictor.image_size, resize=resize)
        except ImageRejected as exc:
            raise UploadRejected(name, exc) from None
