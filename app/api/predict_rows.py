"""Classifying rows of numbers with a model trained on a tabular (CSV) dataset."""

import asyncio
from typing import Annotated, Any

import torch
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.api.deps import JOB_ID_MAX, ModelCacheDep, ServingJobsDep, SettingsDep
from app.api.predict import ERRORS, TopKQuery, as_output, serving_batcher
from app.errors import InvalidInput
from app.ml.csv_tables import Standardizer
from app.schemas import BatchPredictionOut

router = APIRouter(tags=["predict"])

MAX_ROWS = 10_000
MAX_NAMED = 5

Value = Annotated[float, Field(allow_inf_nan=False)]


class RowsIn(BaseModel):
    rows: list[dict[str, Value]] = Field(
        min_length=1,
        max_length=MAX_ROWS,
        description="One object per row: every feature column of the job's dataset by name, "
        "with a number (the dataset's `feature_columns`; its target and dropped columns are "
        "not sent).",
        examples=[[{"fixed acidity": 7.4, "volatile acidity": 0.7, "alcohol": 9.4}]],
    )


def _named(names: list[str]) -> str:
    shown = ", ".join(repr(name) for name in names[:MAX_NAMED])
    return shown + (f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else "")


def features(rows: list[dict[str, float]], standardizer: Standardizer) -> torch.Tensor:
    """The rows as the model's input, standardised as in training; 422 naming the first row
    whose columns are not exactly the model's."""
    columns = standardizer.columns
    for index, row in enumerate(rows):
        missing = [name for name in columns if name not in row]
        unknown = sorted(name for name in row if name not in set(columns))
        if missing or unknown:
            parts = ([f"missing columns {_named(missing)}"] if missing else []) + (
                [f"unknown columns {_named(unknown)}"] if unknown else []
            )
            raise InvalidInput(f"rows[{index}]: {'; '.join(parts)}")
    values = torch.tensor([[row[name] for name in columns] for row in rows], dtype=torch.float64)
    return standardizer.apply(values)


@router.post(
    "/predict/rows",
    response_model=BatchPredictionOut,
    summary="Classify rows of a table",
    responses=ERRORS,
)
async def predict_rows(
    body: RowsIn,
    serving: ServingJobsDep,
    models: ModelCacheDep,
    settings: SettingsDep,
    job_id: Annotated[
        int, Query(ge=1, le=JOB_ID_MAX, description="The job trained on the tabular dataset.")
    ],
    top_k: TopKQuery = None,
) -> JSONResponse:
    """Predictions for every row, in the order sent."""
    served_id, batcher = await serving_batcher(serving, models, settings, job_id)
    predictor = batcher.predictor
    standardizer = predictor.saved.standardizer
    if standardizer is None:
        raise InvalidInput(f"job {served_id} was trained on images: send them to POST /predict")
    inputs = features(body.rows, standardizer)
    loop = asyncio.get_running_loop()
    predictions = await loop.run_in_executor(models.executor, predictor.predict, inputs)
    answer: dict[str, Any] = {
        "job_id": served_id,
        "predictions": [as_output(p, top_k) for p in predictions],
    }
    return JSONResponse(answer)
