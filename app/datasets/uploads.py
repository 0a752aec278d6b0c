"""Accepting an uploaded dataset: stored, checked at once (layout, safety, columns), queued for
a worker to decode; nothing is left on disk when it is refused."""

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from app.datasets.files import dataset_folder, new_dataset_id, upload_path
from app.datasets.state import create_dataset
from app.db import session_scope
from app.errors import InvalidInput
from app.ml.archives import ArchiveRejected, ImageArchive, archive_kind
from app.ml.csv_tables import TableRejected, read_header
from app.ml.image_folders import check_decoded_size
from app.models import Dataset

COPY_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class UploadOptions:
    """How to make a dataset of the upload (the form fields of POST /datasets)."""

    image_size: int
    test_fraction: float
    seed: int
    target: str | None  # a CSV's class column
    drop: str | None  # a CSV's columns to leave out, comma-separated


def accept_upload(data_dir: Path, name: str, body: BinaryIO, options: UploadOptions) -> Dataset:
    """Store the upload, check it and queue it for decoding; 422 with the reason when refused."""
    dataset_id = new_dataset_id()
    upload = upload_path(data_dir, dataset_id)
    upload.parent.mkdir(parents=True, exist_ok=True)
    try:
        with upload.open("wb") as out:
            shutil.copyfileobj(body, out, COPY_CHUNK_BYTES)
        size = upload.stat().st_size
        if size == 0:
            raise InvalidInput("file: the upload is empty")
        kind, how = _checked_kind(upload, options)
        with session_scope(write=True) as session:
            dataset = create_dataset(
                session, dataset_id, name=name[:255], kind=kind, options=how, upload_bytes=size
            )
        return dataset
    except BaseException:
        shutil.rmtree(dataset_folder(data_dir, dataset_id), ignore_errors=True)
        raise


def _checked_kind(upload: Path, options: UploadOptions) -> tuple[str, dict[str, Any]]:
    """The upload's kind ("images" or "tabular") and the options its decoding needs."""
    how: dict[str, Any] = {"test_fraction": options.test_fraction, "seed": options.seed}
    try:
        if archive_kind(upload) is None:
            if options.target is None:
                raise InvalidInput(
                    "file: the file is neither a zip nor a tar.gz archive (a CSV needs the "
                    "form field target)"
                )
            dropped = [c.strip() for c in (options.drop or "").split(",") if c.strip()]
            read_header(upload, options.target, dropped)
            how.update(target=options.target, drop=dropped)
            return "tabular", how
        archive = ImageArchive(upload)
        check_decoded_size(len(archive.layout().members), options.image_size, archive.limits)
        how["image_size"] = options.image_size
        return "images", how
    except (ArchiveRejected, TableRejected) as exc:
        raise InvalidInput(f"file: {exc}") from None
