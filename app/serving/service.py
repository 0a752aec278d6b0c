"""What the prediction routes call: find the model that answers, and classify with it."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import torch

from app.errors import InvalidInput
from app.metrics import count_predictions
from app.ml.predictor import Prediction
from app.ml.standardizer import Standardizer
from app.serving.batcher import Batcher, UploadRejected
from app.serving.lookup import ServedModel, ServingJobs, Target
from app.serving.model_cache import ModelCache
from app.serving.rows import column_values
from app.storage.config import get_store, get_store_health
from app.storage.health import StoreHealth
from app.storage.store import ArtifactStore


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

    The database and the artifact store are touched only on a cache miss, and then off the
    event loop.
    """

    def __init__(
        self,
        lookup: ServingJobs,
        models: ModelCache,
        store: Callable[[], ArtifactStore] = get_store,
        health: Callable[[], StoreHealth] = get_store_health,
    ) -> None:
        # The store and its health are asked for at a cache miss, not held: the app's lifespan
        # makes them on a thread (a bucket's client may resolve credentials over HTTP), and an
        # app driven without its lifespan (an embedding, a test) still finds them.
        self.lookup, self.models, self.store, self.health = lookup, models, store, health

    async def classify_images(
        self, target: Target, uploads: list[tuple[str, bytes]], *, resize: bool = True
    ) -> Served:
        """Predictions for (name, bytes) uploads, resized to the model's size (or refused at
        another size without `resize`); 422 naming the first that is not a usable image, or
        when the model was trained on a table."""
        served, batcher = await self.model_for(target)
        if batcher.predictor.standardizer is not None:
            raise InvalidInput(
                f"{served.label} was trained on a table: send its rows to POST /predict/rows"
            )
        try:
            predictions = await batcher.predict(uploads, resize=resize)
        except UploadRejected as exc:
            raise InvalidInput(str(exc)) from None
        count_predictions(served.model, served.version, len(predictions))
        return Served(served, predictions)

    async def classify_rows(self, target: Target, rows: list[dict[str, float]]) -> Served:
        """Predictions for rows given by column name; 422 when the model was trained on images
        or a row's columns are not exactly the model's."""
        served, batcher = await self.model_for(target)
        if batcher.predictor.standardizer is None:
            raise InvalidInput(f"{served.label} was trained on images: send them to POST /predict")
        return await self._classify_table(served, batcher, lambda s: column_values(rows, s))

    async def classify_pixels(
        self, served: ServedModel, batcher: Batcher, pixels: torch.Tensor
    ) -> Served:
        """Predictions for uint8 images (N, 3, H, W) of the model's size, with the model and
        batcher that model_for found: in the same forward passes as the uploads."""
        predictions = await batcher.predict_pixels(pixels)
        count_predictions(served.model, served.version, len(predictions))
        return Served(served, predictions)

    async def classify_features(
        self, served: ServedModel, batcher: Batcher, values: torch.Tensor
    ) -> Served:
        """Predictions for a table model's raw feature values (N, F), in its column order;
        standardised as in training, on the inference thread."""
        return await self._classify_table(served, batcher, lambda _standardizer: values)

    async def _classify_table(
        self,
        served: ServedModel,
        batcher: Batcher,
        raw_values: Callable[[Standardizer], torch.Tensor],
    ) -> Served:
        """One forward pass over a table's rows, made, standardised and classified on the
        inference thread like every forward pass (rows are not gathered across requests: one
        request's rows are one forward pass already)."""
        predictor = batcher.predictor
        standardizer = predictor.standardizer
        assert standardizer is not None

        def classify() -> list[Prediction]:
            return predictor.predict(standardizer.apply(raw_values(standardizer)))

        loop = asyncio.get_running_loop()
        predictions = await loop.run_in_executor(self.models.executor, classify)
        count_predictions(served.model, served.version, len(predictions))
        return Served(served, predictions)

    async def model_for(self, target: Target) -> tuple[ServedModel, Batcher]:
        """The model that answers, and its batcher (loaded and verified on first use)."""
        served = await self.lookup.find_once(target)
        batcher = self.models.cached(served)
        if batcher is None:
            loading = self.models.loading(served, self.store(), self.health())
            batcher = await asyncio.wrap_future(loading)
        return served, batcher
