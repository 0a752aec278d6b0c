"""A worker's other task: decode an uploaded dataset once, into the tensors jobs train from."""

import errno
import logging
import shutil
from dataclasses import dataclass
from typing import Any

from app.dataset_queue import (
    IngestResult,
    claim_next_dataset,
    dataset_folder,
    fail_dataset,
    finish_dataset,
    images_path,
    requeue_orphaned_datasets,
    upload_path,
)
from app.db import session_scope
from app.ml.archives import ArchiveRejected
from app.ml.image_folders import decode_archive, save_image_folders
from app.settings import Settings

log = logging.getLogger("trainserve.worker")


@dataclass(frozen=True)
class ClaimedDataset:
    id: str
    options: dict[str, Any]


def claim_dataset(settings: Settings, owner: str) -> ClaimedDataset | None:
    """The oldest queued dataset, now ours to decode (orphaned ones are queued again first)."""
    with session_scope(write=True) as session:
        requeued = requeue_orphaned_datasets(session, settings.lease_seconds)
        if requeued:
            log.warning("%d dataset(s) whose worker was lost queued again", requeued)
        dataset = claim_next_dataset(session, owner)
        return None if dataset is None else ClaimedDataset(dataset.id, dict(dataset.options))


def ingest(settings: Settings, owner: str, dataset: ClaimedDataset) -> None:
    """Decode the dataset's upload and record the outcome; the upload is removed once it is."""
    upload = upload_path(settings.data_dir, dataset.id)
    log.info("dataset %s: decoding %s", dataset.id, upload)
    try:
        folders = decode_archive(
            upload,
            image_size=dataset.options["image_size"],
            test_fraction=dataset.options["test_fraction"],
            seed=dataset.options["seed"],
        )
        save_image_folders(folders, images_path(settings.data_dir, dataset.id))
    except Exception as exc:
        message = _failure_message(settings, exc)
        log.error("dataset %s failed: %s", dataset.id, message)
        with session_scope(write=True) as session:
            recorded = fail_dataset(session, dataset.id, owner, message)
        if recorded:
            upload.unlink(missing_ok=True)
        else:
            shutil.rmtree(dataset_folder(settings.data_dir, dataset.id), ignore_errors=True)
        return
    result = IngestResult(
        classes=folders.classes,
        counts=folders.counts(),
        image_size=folders.image_size,
        test_split=folders.test_split,
        ignored_files=folders.ignored,
    )
    with session_scope(write=True) as session:
        kept = finish_dataset(session, dataset.id, owner, result)
    if not kept:  # deleted while we decoded it
        shutil.rmtree(dataset_folder(settings.data_dir, dataset.id), ignore_errors=True)
        return
    upload.unlink(missing_ok=True)
    log.info(
        "dataset %s ready: %d classes, %d training and %d test images",
        dataset.id,
        len(folders.classes),
        len(folders.train),
        len(folders.test),
    )


def _failure_message(settings: Settings, exc: Exception) -> str:
    """What the user reads in the dataset's `error`."""
    if isinstance(exc, ArchiveRejected):
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return "its upload is gone from the server's disk; upload it again"
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"the disk is full: could not write under {settings.data_dir}"
    log.exception("decoding a dataset failed")  # unexpected: keep the traceback
    return f"{type(exc).__name__}: {exc}"
