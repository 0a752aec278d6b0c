"""The API's views of uploaded weights files."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.models import WeightsFile


class WeightsOut(BaseModel):
    id: str = Field(description='What a job names in init_from: {"weights": id}.')
    filename: str = Field(description="The uploaded file's name.")
    format: Literal["safetensors", "pytorch"] = Field(
        description="safetensors, or pytorch (a state_dict saved with torch.save)."
    )
    size_bytes: int
    sha256: str = Field(description="Of the file's bytes; a job checks them against it.")
    tensor_count: int = Field(description="Tensors in the file.")
    parameters: int = Field(
        description="Numbers in all its tensors together (batch norm statistics included)."
    )
    created_at: datetime


class WeightsDetailOut(WeightsOut):
    tensors: dict[str, list[int]] = Field(
        description="Each tensor's shape, by name, in the file's order: what a job's model must "
        "have (its classifier head excepted)."
    )


class WeightsList(BaseModel):
    items: list[WeightsOut] = Field(description="Newest first.")
    total: int


def weights_view(row: WeightsFile) -> WeightsOut:
    return WeightsOut.model_validate(_fields(row))


def weights_detail(row: WeightsFile) -> WeightsDetailOut:
    return WeightsDetailOut.model_validate({**_fields(row), "tensors": row.tensors})


def _fields(row: WeightsFile) -> dict[str, object]:
    return {
        "id": row.id,
        "filename": row.filename,
        "format": row.format,
        "size_bytes": row.size_bytes,
        "sha256": row.sha256,
        "tensor_count": row.tensor_count,
        "parameters": row.parameters,
        "created_at": row.created_at,
    }
