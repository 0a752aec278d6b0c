"""Classifying rows of numbers with a model trained on a tabular (CSV) dataset."""

from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.api.deps import PredictionsDep, TargetDep, TopKQuery
from app.serving.schemas import PREDICTION_ERRORS, BatchPredictionOut, batch_json

router = APIRouter(tags=["predict"])

MAX_ROWS = 10_000

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


@router.post(
    "/predict/rows",
    response_model=BatchPredictionOut,
    summary="Classify rows of a table",
    responses=PREDICTION_ERRORS,
)
async def predict_rows(
    body: RowsIn,
    predictions: PredictionsDep,
    target: TargetDep,
    top_k: TopKQuery = None,
) -> JSONResponse:
    """Predictions for every row, in the order sent, by a model trained on a table (name it
    with job_id or model: the default model is usually an image model)."""
    served = await predictions.classify_rows(target, body.rows)
    return JSONResponse(batch_json(served, top_k))
