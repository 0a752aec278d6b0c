"""Accepting an uploaded dataset: stored, checked at once (layout, safety, columns), queued for
a worker to decode; nothing is left on disk when it is refused.

The upload is written and checked under incoming/, then moved into datasets/<id>/ in the
transaction that creates its row: a crash at any moment leaves a row with its upload, or files
no row refers to, which the sweep removes (app/sweep.py).
"""

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from app.datasets.files import dataset_folder, incoming_path, new_dataset_id, upload_path
from app.datasets.state import create_dataset
from app.db import session_scope
from app.errors import InvalidInput
from app.ml.archives import ArchiveRejected, ImageArchive, archive_kind
from app.ml.csv_tables import TableRejected, read_header
from app.ml.image_folders import check_decoded_size
from app.models import Dataset

log = logging.getLogger("trainserve.api")

COPY_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class UploadOptions:
    """How to make a dataset of the upload (the form fields of POST /datasets)."""

    image_size: int
    test_fraction: float
    seed: int
    target: str | None  # a CSV's class column
    drop: str | None  # a CSV's columns to leave out, comma-separated


@dataclass(frozen=True)
class UploadPolicy:
    """What the settings say about every upload."""

    data_dir: Path
    max_attempts: int  # deaths of its decoding process or worker before it fails
    pause_s: float = 0.0  # fault injection: a pause once it is stored, before its row


def accept_upload(
    policy: UploadPolicy, name: str, body: BinaryIO, options: UploadOptions
) -> Dataset:
    """Store the upload, check it and queue it for decoding; 422 with the reason when refused."""
    dataset_id = new_dataset_id()
    incoming = incoming_path(policy.data_dir, dataset_id)
    incoming.parent.mkdir(parents=True, exist_ok=True)
    try:
        with incoming.open("wb") as out:
            shutil.copyfileobj(body, out, COPY_CHUNK_BYTES)
        size = incoming.stat().st_size
        if policy.pause_s:
            log.info(
                "upload %s stored (%d bytes); pausing %.1f s", dataset_id, size, policy.pause_s
            )
            time.sleep(policy.pause_s)
        if size == 0:
            raise InvalidInput("file: the upload is empty")
        kind, how = _checked_kind(incoming, options)
        with session_scope(write=True) as session:
            dataset = create_dataset(
                session,
                dataset_id,
                name=name[:255],
                kind=kind,
                options=how,
                upload_bytes=size,
                max_attempts=policy.max_attempts,
            )
            upload = upload_path(policy.data_dir, dataset_id)
            upload.parent.mkdir(parents=True, exist_ok=True)
            os.replace(incoming, upload)
        return dataset
    except BaseException:
        incoming.unlink(missing_ok=True)
        shutil.rmtree(dataset_folder(policy.data_dir, dataset_id), ignore_errors=True)
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
