"""Uploaded datasets: upload (checked at once, decoded by a worker), list, inspect, delete."""

import shutil
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, Response, UploadFile
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.api.deps import SessionDep, SettingsDep
from app.datasets.state import (
    ID_PREFIX,
    create_dataset,
    dataset_folder,
    new_dataset_id,
    upload_path,
)
from app.db import session_scope
from app.errors import Conflict, InvalidInput, NotFound
from app.ml.archives import ArchiveRejected, ImageArchive, archive_kind
from app.ml.csv_tables import TableRejected, read_header
from app.ml.image_folders import check_decoded_size
from app.models import Dataset, DatasetStatus, Job, JobStatus
from app.schemas import COUNT_MAX, SEED_MAX, DatasetList, DatasetOut, ErrorOut

router = APIRouter(prefix="/datasets", tags=["datasets"])

DatasetId = Annotated[str, Path(pattern=f"^{ID_PREFIX}[0-9a-f]{{12}}$", max_length=32)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No dataset with this id."}
}
COPY_CHUNK_BYTES = 1024 * 1024


def _find(session: Session, dataset_id: str) -> Dataset:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFound(f"dataset {dataset_id} not found")
    return dataset


@router.post(
    "",
    status_code=202,
    response_model=DatasetOut,
    responses={
        413: {"model": ErrorOut, "description": "Over TRAINSERVE_MAX_DATASET_BYTES."},
        422: {"model": ErrorOut, "description": "Not a safe zip or tar.gz of train/<class>/."},
    },
    summary="Upload a dataset: an image-folder archive or a CSV table",
)
def upload_dataset(
    settings: SettingsDep,
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
    statistics."""
    dataset_id = new_dataset_id()
    upload = upload_path(settings.data_dir, dataset_id)
    upload.parent.mkdir(parents=True, exist_ok=True)
    try:
        with upload.open("wb") as out:
            shutil.copyfileobj(file.file, out, COPY_CHUNK_BYTES)
        size = upload.stat().st_size
        if size == 0:
            raise InvalidInput("file: the upload is empty")
        options: dict[str, Any] = {"test_fraction": test_fraction, "seed": seed}
        try:
            if archive_kind(upload) is None:
                if target is None:
                    raise InvalidInput(
                        "file: the file is neither a zip nor a tar.gz archive (a CSV needs the "
                        "form field target)"
                    )
                kind, dropped = "tabular", [c.strip() for c in (drop or "").split(",") if c.strip()]
                read_header(upload, target, dropped)
                options.update(target=target, drop=dropped)
            else:
                kind = "images"
                archive = ImageArchive(upload)
                check_decoded_size(len(archive.layout().members), image_size, archive.limits)
                options["image_size"] = image_size
        except (ArchiveRejected, TableRejected) as exc:
            raise InvalidInput(f"file: {exc}") from None
        with session_scope(write=True) as session:
            dataset = create_dataset(
                session,
                dataset_id,
                name=(file.filename or "upload")[:255],
                kind=kind,
                options=options,
                upload_bytes=size,
            )
            view = DatasetOut.model_validate(dataset)
    except BaseException:
        shutil.rmtree(dataset_folder(settings.data_dir, dataset_id), ignore_errors=True)
        raise
    response.headers["Location"] = f"/datasets/{dataset_id}"
    return view


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
    return DatasetOut.model_validate(_find(session, dataset_id))


@router.delete(
    "/{dataset_id}",
    status_code=204,
    responses={
        409: {"model": ErrorOut, "description": "A queued or running job uses it."},
        **NOT_FOUND,
    },
    summary="Delete a dataset",
)
def delete_dataset(settings: SettingsDep, dataset_id: DatasetId) -> Response:
    """Its row and files; refused while a queued or running job trains on it."""
    with session_scope(write=True) as session:
        _find(session, dataset_id)
        unfinished = session.scalars(
            select(Job).where(Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
        ).all()
        users = sorted(job.id for job in unfinished if job.config.get("dataset") == dataset_id)
        if users:
            raise Conflict(
                f"dataset {dataset_id} is used by unfinished job(s) {', '.join(map(str, users))}; "
                "cancel them or wait for them to end"
            )
        session.delete(session.get(Dataset, dataset_id))
    shutil.rmtree(dataset_folder(settings.data_dir, dataset_id), ignore_errors=True)
    return Response(status_code=204)


def check_usable(session: Session, dataset_id: str, model: str) -> None:
    """For a job naming the dataset: 404 when it does not exist, 409 when it is not ready, 422
    when the job's model does not fit its kind."""
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFound(f"dataset {dataset_id} not found (see GET /datasets)")
    if dataset.status != DatasetStatus.READY:
        reason = f": {dataset.error}" if dataset.error else ""
        raise Conflict(f"dataset {dataset_id} is {dataset.status}{reason}; a job needs it ready")
    wanted = "mlp" if dataset.kind == "tabular" else "tutorial_cnn"
    if model != wanted:
        raise InvalidInput(
            f'model: dataset {dataset_id} holds {dataset.kind} data; train it with model "{wanted}"'
        )
