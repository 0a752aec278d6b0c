"""A worker's other task: decode an uploaded dataset once, into the tensors jobs train from."""

import errno
import logging
import shutil
from dataclasses import dataclass
from typing import Any

from app.datasets.files import dataset_folder, images_path, table_path, upload_path
from app.datasets.state import (
    IngestResult,
    claim_next_dataset,
    fail_dataset,
    finish_dataset,
    requeue_orphaned_datasets,
)
from app.db import session_scope
from app.ml.archives import ArchiveRejected
from app.ml.csv_tables import TableRejected
from app.ml.image_folders import decode_archive, save_image_folders
from app.ml.table_datasets import prepare_table, save_table_dataset
from app.settings import Settings

log = logging.getLogger("trainserve.worker")


@dataclass(frozen=True)
class ClaimedDataset:
    id: str
    kind: str
    options: dict[str, Any]


def claim_dataset(settings: Settings, owner: str) -> ClaimedDataset | None:
    """The oldest queued dataset, now ours to decode (orphaned ones are queued again first)."""
    with session_scope(write=True) as session:
        requeued = requeue_orphaned_datasets(session, settings.lease_seconds)
        if requeued:
            log.warning("%d dataset(s) whose worker was lost queued again", requeued)
        dataset = claim_next_dataset(session, owner)
        if dataset is None:
            return None
        return ClaimedDataset(dataset.id, dataset.kind, dict(dataset.options))


def ingest(settings: Settings, owner: str, dataset: ClaimedDataset) -> None:
    """Decode the dataset's upload and record the outcome; the upload is removed once it is."""
    upload = upload_path(settings.data_dir, dataset.id)
    log.info("dataset %s: decoding %s", dataset.id, upload)
    try:
        result = _decode(settings, dataset)
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
    with session_scope(write=True) as session:
        kept = finish_dataset(session, dataset.id, owner, result)
    if not kept:  # deleted while we decoded it
        shutil.rmtree(dataset_folder(settings.data_dir, dataset.id), ignore_errors=True)
        return
    upload.unlink(missing_ok=True)
    log.info("dataset %s ready: %s", dataset.id, result.counts)


def _decode(settings: Settings, dataset: ClaimedDataset) -> IngestResult:
    """Read the upload into the file jobs train from; what it holds."""
    upload, options = upload_path(settings.data_dir, dataset.id), dataset.options
    if dataset.kind == "tabular":
        table = prepare_table(
            upload,
            target=options["target"],
            drop=options["drop"],
            test_fraction=options["test_fraction"],
            seed=options["seed"],
        )
        save_table_dataset(table, table_path(settings.data_dir, dataset.id))
        return IngestResult(
            classes=table.classes,
            counts=table.counts(),
            test_split="drawn",
            feature_columns=table.standardizer.columns,
        )
    folders = decode_archive(
        upload,
        image_size=options["image_size"],
        test_fraction=options["test_fraction"],
        seed=options["seed"],
    )
    save_image_folders(folders, images_path(settings.data_dir, dataset.id))
    return IngestResult(
        classes=folders.classes,
        counts=folders.counts(),
        test_split=folders.test_split,
        image_size=folders.image_size,
        ignored_files=folders.ignored,
    )


def _failure_message(settings: Settings, exc: Exception) -> str:
    """What the user reads in the dataset's `error`."""
    if isinstance(exc, ArchiveRejected | TableRejected):
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return "its upload is gone from the server's disk; upload it again"
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"the disk is full: could not write under {settings.data_dir}"
    log.exception("decoding a dataset failed")  # unexpected: keep the traceback
    return f"{type(exc).__name__}: {exc}"
