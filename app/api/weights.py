"""Uploaded weights files that fine-tuning jobs start from: upload, list, inspect, delete."""

from typing import Annotated, Any

from fastapi import APIRouter, File, Path, Query, Response, UploadFile
from sqlalchemy import func, select

from app.api.deps import SessionDep, StoreDep
from app.errors import ErrorOut
from app.jobs.fields import COUNT_MAX
from app.models import WeightsFile
from app.weights.ids import WEIGHTS_ID_PATTERN
from app.weights.schemas import WeightsDetailOut, WeightsList, weights_detail, weights_view
from app.weights.uploads import accept_weights
from app.weights.usage import find_weights, remove_weights

router = APIRouter(prefix="/weights", tags=["weights"])

WeightsId = Annotated[str, Path(pattern=WEIGHTS_ID_PATTERN, max_length=32)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No weights file with this id."}
}


@router.post(
    "",
    status_code=201,
    response_model=WeightsDetailOut,
    responses={
        413: {"model": ErrorOut, "description": "Over TRAINSERVE_MAX_WEIGHTS_BYTES."},
        422: {
            "model": ErrorOut,
            "description": "Not a tensor file, or a pickle that refers to code (never run).",
        },
        503: {"model": ErrorOut, "description": "The artifact store did not take the file."},
    },
    summary="Upload a weights file to fine-tune from",
)
def upload_weights(
    store: StoreDep,
    response: Response,
    file: Annotated[
        UploadFile,
        File(
            description="A safetensors file, or a PyTorch state_dict saved with torch.save "
            '(also a checkpoint holding one under "state_dict").'
        ),
    ],
) -> WeightsDetailOut:
    """Stored with its sha256 and each tensor's shape. A PyTorch file is read with
    torch.load(weights_only=True): a pickle that refers to code is refused with a 422, and
    nothing in it runs. Jobs name it in `init_from` as {"weights": id}."""
    row = accept_weights(store, file.filename or "upload", file.file)
    response.headers["Location"] = f"/weights/{row.id}"
    return weights_detail(row)


@router.get("", response_model=WeightsList, summary="List weights files, newest first")
def list_weights(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=COUNT_MAX)] = 0,
) -> WeightsList:
    rows = session.scalars(
        select(WeightsFile)
        .order_by(WeightsFile.created_at.desc(), WeightsFile.id)
        .limit(limit)
        .offset(offset)
    ).all()
    total = session.scalar(select(func.count()).select_from(WeightsFile)) or 0
    return WeightsList(items=[weights_view(row) for row in rows], total=total)


@router.get(
    "/{weights_id}",
    response_model=WeightsDetailOut,
    responses=NOT_FOUND,
    summary="One weights file",
)
def get_weights(session: SessionDep, weights_id: WeightsId) -> WeightsDetailOut:
    """Its format, size, sha256 and every tensor's shape."""
    return weights_detail(find_weights(session, weights_id))


@router.delete(
    "/{weights_id}",
    status_code=204,
    responses={
        409: {"model": ErrorOut, "description": "A queued or running job starts from it."},
        **NOT_FOUND,
    },
    summary="Delete a weights file",
)
def delete_weights(store: StoreDep, weights_id: WeightsId) -> Response:
    """Its row and file; refused while a queued or running job starts from it. Finished jobs
    and their registered versions keep its sha256 and name."""
    remove_weights(store, weights_id)
    return Response(status_code=204)
