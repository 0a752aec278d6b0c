"""A worker's other task: decode an uploaded dataset once, into the tensors jobs train from.

The decoding runs in a child process (workers/decoder.py): when an upload crashes the decoder or
exhausts memory, the worker survives, says how its decoder died, and the dataset is tried again
until its attempts run out (app/datasets/state.py).
"""

import logging
import shutil
import threading
from dataclasses import dataclass
from typing import Any

from app.datasets.files import dataset_folder, upload_path
from app.datasets.state import (
    DatasetLease,
    claim_next_dataset,
    decoder_died,
    fail_dataset,
    finish_dataset,
    recover_orphaned_datasets,
    release_dataset,
)
from app.db import session_scope
from app.models import DatasetStatus
from app.settings import Settings
from workers.decoder_process import DecoderReply, run_decoder

log = logging.getLogger("trainserve.worker")


@dataclass(frozen=True)
class ClaimedDataset:
    lease: DatasetLease
    kind: str
    options: dict[str, Any]

    @property
    def id(self) -> str:
        return self.lease.dataset_id


def claim_dataset(settings: Settings, owner: str) -> ClaimedDataset | None:
    """The oldest queued dataset, now ours to decode (the attempts of lost workers end first)."""
    with session_scope(write=True) as session:
        requeued, failed = recover_orphaned_datasets(session, settings.lease_seconds)
        claimed = claim_next_dataset(session, owner)
        claim = None
        if claimed is not None:
            dataset, lease = claimed
            claim = ClaimedDataset(lease, dataset.kind, dict(dataset.options))
    if requeued or failed:
        log.warning(
            "datasets whose worker was lost: %d queued again, %d failed (out of attempts)",
            requeued,
            len(failed),
        )
    for dataset_id in failed:
        _remove_files(settings, dataset_id)
    return claim


def ingest(settings: Settings, dataset: ClaimedDataset, stop: threading.Event) -> None:
    """Decode the dataset's upload and record the outcome; the upload is removed once it is.
    When `stop` is set meanwhile, the decoding ends and the dataset goes back to the queue."""
    lease = dataset.lease
    try:
        reply = run_decoder(settings, lease, dataset.kind, dataset.options, stop)
    except OSError as exc:  # no process to decode in (out of memory, of process slots...)
        reply = DecoderReply(died=f"could not be started ({exc})")
    if reply.stopped:
        with session_scope(write=True) as session:
            released = release_dataset(session, lease)
        if released:
            log.info("dataset %s: the worker is stopping; queued again", dataset.id)
        return
    if reply.died is not None:
        log.error("dataset %s: its decoding process %s", dataset.id, reply.died)
        with session_scope(write=True) as session:
            status = decoder_died(session, lease, reply.died)
        if status is None:
            _lost(dataset.id)
            return
        log.warning(
            "dataset %s %s after attempt %d of %d",
            dataset.id,
            "queued again" if status == DatasetStatus.QUEUED else "failed",
            lease.attempt,
            lease.max_attempts,
        )
        if status == DatasetStatus.FAILED:
            _remove_files(settings, dataset.id)
        return
    upload = upload_path(settings.data_dir, dataset.id)
    if reply.result is None:
        message = reply.error or "the decoder answered nothing"
        log.error("dataset %s failed: %s", dataset.id, message)
        with session_scope(write=True) as session:
            recorded = fail_dataset(session, lease, message)
        if recorded:
            upload.unlink(missing_ok=True)
        else:
            _lost(dataset.id)
        return
    with session_scope(write=True) as session:
        kept = finish_dataset(session, lease, reply.result)
    if not kept:
        _lost(dataset.id)
        return
    upload.unlink(missing_ok=True)
    log.info("dataset %s ready: %s", dataset.id, reply.result.counts)


def _lost(dataset_id: str) -> None:
    # Its files are not ours to remove: another worker may be decoding its upload now. When it
    # was deleted, the sweep removes what this attempt wrote (app/sweep.py).
    log.warning("dataset %s was deleted or taken over meanwhile; nothing recorded", dataset_id)


def _remove_files(settings: Settings, dataset_id: str) -> None:
    """A dataset's files, once it has failed for good or been deleted: nothing in them is used."""
    shutil.rmtree(dataset_folder(settings.data_dir, dataset_id), ignore_errors=True)
