"""What the prediction routes call: find the model that answers, and classify with it."""

import asyncio
from dataclasses import dataclass
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from app.errors import InvalidInput
from app.ml.predictor import Prediction
from app.serving.batcher import Batcher, UploadRejected
from app.serving.lookup import ServingJobs
from app.serving.model_cache import ModelCache
from app.serving.rows import features


@dataclass(frozen=True)
class Served:
    job_id: int  # the job whose model answered
    predictions: list[Prediction]  # in the order of the inputs


class Predictions:
    """Classifies images and table rows with the model of a job (by default the newest).

    The database and the disk are touched only on a cache miss, and then off the event loop.
    """

    def __init__(self, lookup: ServingJobs, models: ModelCache, artifacts_dir: Path) -> None:
        self.lookup, self.models, self.artifacts_dir = lookup, models, artifacts_dir

    async def classify_images(self, job_id: int | None, uploads: list[tuple[str, bytes]]) -> Served:
        """Predictions for (name, bytes) uploads; 422 naming the first that is not a usable
        image, or when the model was trained on a table."""
        served_id, batcher = await self._batcher(job_id)
        if batcher.predictor.standardizer is not None:
            raise InvalidInput(
                "this job's model was trained on a table: send its rows to POST /predict/rows"
            )
        try:
            return Served(served_id, await batcher.predict(uploads))
        except UploadRejected as exc:
            raise InvalidInput(str(exc)) from None

    async def classify_rows(self, job_id: int, rows: list[dict[str, float]]) -> Served:
        """Predictions for rows given by column name; 422 when the model was trained on images
        or a row's columns are not exactly the model's."""
        served_id, batcher = await self._batcher(job_id)
        predictor = batcher.predictor
        standardizer = predictor.standardizer
        if standardizer is None:
            raise InvalidInput(f"job {served_id} was trained on images: send them to POST /predict")

        def classify() -> list[Prediction]:
            return predictor.predict(features(rows, standardizer))

        # On the inference thread, like every forward pass; rows are not gathered across
        # requests (one request's rows are one forward pass already).
        loop = asyncio.get_running_loop()
        return Served(served_id, await loop.run_in_executor(self.models.executor, classify))

    async def _batcher(self, job_id: int | None) -> tuple[int, Batcher]:
        """The job whose model answers, and its batcher."""
        served = self.lookup.cached(job_id)
        if served is None:
            served = await run_in_threadpool(self.lookup.find, job_id)
        batcher = self.models.cached(served.job_id)
        if batcher is None:
            path = self.artifacts_dir / served.model_path
            batcher = await run_in_threadpool(
                self.models.get, served.job_id, path, served.model_sha256
            )
        return served.job_id, batcher
