"""Uploaded datasets: upload (checked at once, decoded by a worker), list, inspect, delete."""

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, Response, UploadFile
from sqlalchemy import func, select

from app.api.deps import SessionDep, SettingsDep, StoreDep
from app.datasets.files import ID_PREFIX
from app.datasets.schemas import DatasetList, DatasetOut
from app.datasets.uploads import UploadOptions, UploadPolicy, accept_upload
from app.datasets.usage import find_dataset, remove_dataset
from app.errors import ErrorOut
from app.jobs.fields import COUNT_MAX, SEED_MAX
from app.models import Dataset

router = APIRouter(prefix="/datasets", tags=["datasets"])

DatasetId = Annotated[str, Path(pattern=f"^{ID_PREFIX}[0-9a-f]{{12}}$", max_length=32)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No dataset with this id."}
}


@router.post(
    "",
    status_code=202,
    response_model=DatasetOut,
    responses={
        413: {"model": ErrorOut, "description": "Over TRAINSERVE_MAX_DATASET_BYTES."},
        422: {"model": ErrorOut, "description": "Not a safe zip or tar.gz of train/<class>/."},
        503: {"model": ErrorOut, "description": "The artifact store did not take the file."},
    },
    summary="Upload a dataset: an image-folder archive or a CSV table",
)
def upload_dataset(
    settings: SettingsDep,
    store: StoreDep,
    response: Response,
    file: Annotated[
        UploadFile,
        File(
            description="A zip or tar.gz of train/<class>/<image> (and optionally "
            "test/<class>/<image>), inside at most one enclosing folder."
        ),
    ],
    image_size: Annotated[
        int, Form(ge=16, le=256, description="Every image is resized to this square size.")
    ] = 32,
    test_fraction: Annotated[
        float,
        Form(
            gt=0,
            le=0.5,
            description="Without test/ folders: the share of each class held out as the test set.",
        ),
    ] = 0.2,
    seed: Annotated[int, Form(ge=0, le=SEED_MAX, description="Draws that test set.")] = 0,
    target: Annotated[
        str | None,
        Form(max_length=200, description="A CSV's column holding the class of each row."),
    ] = None,
    drop: Annotated[
        str | None,
        Form(max_length=2000, description="A CSV's columns to leave out (comma-separated)."),
    ] = None,
) -> DatasetOut:
    """An archive's layout and safety, or a CSV's columns, are checked now (422 with the
    reason); a worker then decodes it once (status `queued`, `ingesting`, then `ready` or
    `failed`). A CSV (comma, semicolon or tab separated) needs `target`; its other columns,
    but those in `drop`, are the numeric features, standardised with the training split's
    statistics. The request's body is spooled to a temporary file as it arrives, copied to a
    staged file, checked there, then published to the artifact store: never held in memory
    whole."""
    options = UploadOptions(
        image_size=image_size, test_fraction=test_fraction, seed=seed, target=target, drop=drop
    )
    policy = UploadPolicy(settings.max_attempts, settings.failpoint_upload_pause_seconds)
    dataset = accept_upload(store, policy, file.filename or "upload", file.file, options)
    response.headers["Location"] = f"/datasets/{dataset.id}"
    return DatasetOut.model_validate(dataset)


@router.get("", response_model=DatasetList, summary="List datasets, newest first")
def list_datasets(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=COUNT_MAX)] = 0,
) -> DatasetList:
    rows = session.scalars(
        select(Dataset).order_by(Dataset.created_at.desc(), Dataset.id).limit(limit).offset(offset)
    ).all()
    total = session.scalar(select(func.count()).select_from(Dataset)) or 0
    return DatasetList(items=[DatasetOut.model_validate(row) for row in rows], total=total)


@router.get("/{dataset_id}", response_model=DatasetOut, responses=NOT_FOUND, summary="One dataset")
def get_dataset(session: SessionDep, dataset_id: DatasetId) -> DatasetOut:
    """Its status, classes, images per class and split, image size, or why it failed."""
    return DatasetOut.model_validate(find_dataset(session, dataset_id))


@router.delete(
    "/{dataset_id}",
    status_code=204,
    responses={
        409: {"model": ErrorOut, "description": "A queued or running job uses it."},
        **NOT_FOUND,
    },
    summary="Delete a dataset",
)
def delete_dataset(settings: SettingsDep, store: StoreDep, dataset_id: DatasetId) -> Response:
    """Its row and files; refused while a queued or running job trains on it."""
    remove_dataset(store, settings.data_dir, dataset_id)
    return Response(status_code=204)
