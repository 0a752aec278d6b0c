"""A worker's other task: decode an uploaded dataset once, into the tensors jobs train from.

The decoding runs in a child process (workers/decoder.py): when an upload crashes the decoder or
exhausts memory, the worker survives, says how its decoder died, and the dataset is tried again
until its attempts run out (app/datasets/state.py). The decoder fetches the upload from the
artifact store and publishes the tensors there; the worker records their key and sha256 in the
transaction that marks the dataset ready, then removes the upload.
"""

import contextlib
import logging
import os
import shutil
import threading
from dataclasses import dataclass

from app.datasets.files import dataset_prefix, legacy_folder, legacy_upload_path
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
from app.storage.health import StoreHealth
from app.storage.store import ArtifactStore, StoreError
from workers.decoder import DecodeRequest
from workers.decoder_process import DecoderReply, run_decoder

log = logging.getLogger("trainserve.worker")


@dataclass(frozen=True)
class ClaimedDataset:
    lease: DatasetLease
    request: DecodeRequest

    @property
    def id(self) -> str:
        return self.lease.dataset_id


class Ingest:
    """The datasets a worker decodes, with the settings and the artifact store they live in."""

    def __init__(self, settings: Settings, store: ArtifactStore, store_health: StoreHealth) -> None:
        self.settings, self.store, self.store_health = settings, store, store_health

    def claim(self, owner: str) -> ClaimedDataset | None:
        """The oldest queued dataset, now ours to decode (the attempts of lost workers end
        first)."""
        with session_scope(write=True) as session:
            requeued, failed = recover_orphaned_datasets(session, self.settings.lease_seconds)
            claimed = claim_next_dataset(session, owner)
            claim = None
            if claimed is not None:
                dataset, lease = claimed
                request = DecodeRequest(
                    dataset.id,
                    dataset.kind,
                    dict(dataset.options),
                    parent_pid=os.getpid(),
                    attempt=lease.attempt,
                    upload_key=dataset.upload_key,
                    upload_sha256=dataset.upload_sha256,
                )
                claim = ClaimedDataset(lease, request)
        if requeued or failed:
            log.warning(
                "datasets whose worker was lost: %d queued again, %d failed (out of attempts)",
                requeued,
                len(failed),
            )
        for dataset_id in failed:
            self._remove_files(dataset_id)
        return claim

    def run(self, dataset: ClaimedDataset, stop: threading.Event) -> None:
        """Decode the dataset's upload and record the outcome; the upload is removed once it
        is. When `stop` is set meanwhile, the decoding ends and the dataset goes back to the
        queue."""
        lease = dataset.lease
        try:
            reply = run_decoder(dataset.request, lease, stop)
        except OSError as exc:  # no process to decode in (out of memory, of process slots...)
            reply = DecoderReply(died=f"could not be started ({exc})")
        if reply.store_failed is not None or reply.store_refused is not None:
            # Its answer of a moment ago may be stale: nothing is claimed before it is asked again.
            self.store_health.forget()
        if reply.stopped:
            self._release(dataset, "the worker is stopping")
            return
        if reply.store_refused is not None:
            # No fault of the upload, and waiting on it would not help: the attempt is not
            # counted and the upload kept, to be decoded once the store takes the request.
            log.error("dataset %s: %s", dataset.id, reply.store_refused)
            self._release(dataset, "the artifact store refused the request")
            stop.wait(self.settings.worker_poll_seconds)  # not claimed again at once
            return
        if reply.store_failed is not None:
            reply = DecoderReply(died=f"could not use the artifact store ({reply.store_failed})")
        if reply.died is not None:
            self._died(dataset, reply.died)
        elif reply.result is None:
            message = reply.error or "the decoder answered nothing"
            log.error("dataset %s failed: %s", dataset.id, message)
            with session_scope(write=True) as session:
                recorded = fail_dataset(session, lease, message)
            if recorded:
                self._remove_upload(dataset.request)
            else:
                _lost(dataset.id)
        else:
            with session_scope(write=True) as session:
                kept = finish_dataset(session, lease, reply.result)
            if not kept:
                _lost(dataset.id)
                self._delete(reply.result.tensors_key)  # this attempt's own: no one else's
                return
            self._remove_upload(dataset.request)
            log.info("dataset %s ready: %s", dataset.id, reply.result.counts)

    def _release(self, dataset: ClaimedDataset, why: str) -> None:
        """Hand the dataset back to the queue, this attempt not counted."""
        with session_scope(write=True) as session:
            released = release_dataset(session, dataset.lease)
        if released:
            log.info("dataset %s: %s; queued again", dataset.id, why)

    def _died(self, dataset: ClaimedDataset, how: str) -> None:
        lease = dataset.lease
        log.error("dataset %s: its decoding process %s", dataset.id, how)
        with session_scope(write=True) as session:
            status = decoder_died(session, lease, how)
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
            self._remove_files(dataset.id)

    def _remove_upload(self, request: DecodeRequest) -> None:
        """The upload of a dataset that is ready or failed: nothing reads it any more."""
        if request.upload_key is None:
            legacy_upload_path(self.settings.data_dir, request.id).unlink(missing_ok=True)
        else:
            self._delete(request.upload_key)

    def _delete(self, key: str | None) -> None:
        if key is not None:
            with contextlib.suppress(StoreError):  # else the sweep removes it
                self.store.delete(key)

    def _remove_files(self, dataset_id: str) -> None:
        """A dataset's files, once it has failed for good: nothing in them is used."""
        shutil.rmtree(legacy_folder(self.settings.data_dir, dataset_id), ignore_errors=True)
        with contextlib.suppress(StoreError):  # else the sweep removes them
            self.store.delete_prefix(dataset_prefix(dataset_id))


def _lost(dataset_id: str) -> None:
    # Its files are not ours to remove: another worker may be decoding its upload now. When it
    # was deleted, the sweep removes what this attempt wrote (app/sweep.py).
    log.warning("dataset %s was deleted or taken over meanwhile; nothing recorded", dataset_id)
