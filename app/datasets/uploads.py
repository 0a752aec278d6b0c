"""Accepting an uploaded dataset: its body, spooled by Starlette to a temporary file as it
arrives, is copied to a staged file (never whole in memory), checked at once there (layout,
safety, columns), published to the artifact store and queued for a worker to decode; nothing is
left behind when it is refused (app/storage/uploads.py).

The upload is published under its key before the transaction that creates its row, which
records the key and its sha256: a crash at any moment leaves a row with its upload, or an object
no row refers to, which the sweep removes (app/sweep.py).
"""

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from app.datasets.files import dataset_prefix, new_dataset_id, upload_key
from app.datasets.state import create_dataset
from app.db import session_scope
from app.errors import InvalidInput
from app.ml.archives import ArchiveRejected, ImageArchive, archive_kind
from app.ml.csv_tables import TableRejected, read_header
from app.ml.image_folders import check_decoded_size
from app.models import Dataset
from app.storage.store import ArtifactStore
from app.storage.uploads import staged_upload

log = logging.getLogger("trainserve.api")


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

    max_attempts: int  # deaths of its decoding process or worker before it fails
    pause_s: float = 0.0  # fault injection: a pause once it is received, before it is published


def accept_upload(
    store: ArtifactStore, policy: UploadPolicy, name: str, body: BinaryIO, options: UploadOptions
) -> Dataset:
    """Store the upload, check it and queue it for decoding; 422 with the reason when refused,
    503 when the store fails."""
    dataset_id = new_dataset_id()
    key = upload_key(dataset_id)
    with staged_upload(store, body, key, dataset_prefix(dataset_id)) as staged:
        if policy.pause_s:
            log.info(
                "upload %s received (%d bytes); pausing %.1f s",
                dataset_id,
                staged.size(),
                policy.pause_s,
            )
            time.sleep(policy.pause_s)
        kind, how = _checked_kind(staged.path, options)
        published = staged.publish(key)
        with session_scope(write=True) as session:
            return create_dataset(
                session,
                dataset_id,
                name=name[:255],
                kind=kind,
                options=how,
                upload=published,
                max_attempts=policy.max_attempts,
            )


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
