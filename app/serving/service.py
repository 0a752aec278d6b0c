"""What the prediction routes call: find the model that answers, and classify with it."""

import asyncio
from dataclasses import dataclass
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from app.errors import InvalidInput
from app.metrics import count_predictions
from app.ml.predictor import Prediction
from app.serving.batcher import Batcher, UploadRejected
from app.serving.lookup import ServedModel, ServingJobs, Target
from app.serving.model_cache import ModelCache
from app.serving.rows import features


@dataclass(frozen=True)
class Served:
    model: ServedModel  # the model that answered: its job, and registered name and version
    predictions: list[Prediction]  # in the order of the inputs

    def json(self) -> dict[str, object]:
        """What every prediction answer says about the model that gave it."""
        served = self.model
        return {"model": served.model, "version": served.version, "job_id": served.job_id}


class Predictions:
    """Classifies images and table rows with the model a request names (a job's, or a
    registered model's version; by default the default model's production version).

    The database and the disk are touched only on a cache miss, and then off the event loop.
    """

    def __init__(self, lookup: ServingJobs, models: ModelCache, artifacts_dir: Path) -> None:
        self.lookup, self.models, self.artifacts_dir = lookup, models, artifacts_dir

    async def classify_images(self, target: Target, uploads: list[tuple[str, bytes]]) -> Served:
        """Predictions for (name, bytes) uploads; 422 naming the first that is not a usable
        image, or when the model was trained on a table."""
        served, batcher = await self._batcher(target)
        if batcher.predictor.standardizer is not None:
            raise InvalidInput(
                f"{served.label} was trained on a table: send its rows to POST /predict/rows"
            )
        try:
            predictions = await batcher.predict(uploads)
        except UploadRejected as exc:
            raise InvalidInput(str(exc)) from None
        count_predictions(served.model, served.version, len(predictions))
        return Served(served, predictions)

    async def classify_rows(self, target: Target, rows: list[dict[str, float]]) -> Served:
        """Predictions for rows given by column name; 422 when the model was trained on images
        or a row's columns are not exactly the model's."""
        served, batcher = await self._batcher(target)
        predictor = batcher.predictor
        standardizer = predictor.standardizer
        if standardizer is None:
            raise InvalidInput(f"{served.label} was trained on images: send them to POST /predict")

        def classify() -> list[Prediction]:
            return predictor.predict(features(rows, standardizer))

        # On the inference thread, like every forward pass; rows are not gathered across
        # requests (one request's rows are one forward pass already).
        loop = asyncio.get_running_loop()
        predictions = await loop.run_in_executor(self.models.executor, classify)
        count_predictions(served.model, served.version, len(predictions))
        return Served(served, predictions)

    async def _batcher(self, target: Target) -> tuple[ServedModel, Batcher]:
        """The model that answers, and its batcher."""
        served = self.lookup.cached(target)
        if served is None:
            served = await run_in_threadpool(self.lookup.find, target)
        batcher = self.models.cached(served.job_id)
        if batcher is None:
            batcher = await run_in_threadpool(self.models.get, served, self.artifacts_dir)
        return served, batcher
