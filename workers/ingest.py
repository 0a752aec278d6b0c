"""A worker's other task: decode an uploaded dataset once, into the tensors jobs train from.

The decoding runs in a child process (workers/decoder.py): when an upload crashes the decoder or
exhausts memory, the worker survives, says how its decoder died, and the dataset is tried again
until its attempts run out (app/datasets/state.py).
"""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Any

from app.datasets.files import dataset_folder, upload_path
from app.datasets.state import (
    DatasetLease,
    IngestResult,
    claim_next_dataset,
    decoder_died,
    fail_dataset,
    finish_dataset,
    recover_orphaned_datasets,
)
from app.db import session_scope
from app.settings import Settings
from workers.decoder import DecodeRequest

log = logging.getLogger("trainserve.worker")

KIB_PER_MIB = 1024


@dataclass(frozen=True)
class ClaimedDataset:
    lease: DatasetLease
    kind: str
    options: dict[str, Any]

    @property
    def id(self) -> str:
        return self.lease.dataset_id


@dataclass(frozen=True)
class DecoderReply:
    """What the decoding process answered, or how it died (`died`: "was killed by SIGKILL...")."""

    result: IngestResult | None = None
    error: str | None = None
    died: str | None = None


def claim_dataset(settings: Settings, owner: str) -> ClaimedDataset | None:
    """The oldest queued dataset, now ours to decode (the attempts of lost workers end first)."""
    with session_scope(write=True) as session:
        requeued, failed = recover_orphaned_datasets(session, settings.lease_seconds)
        if requeued or failed:
            log.warning(
                "datasets whose worker was lost: %d queued again, %d failed (out of attempts)",
                requeued,
                failed,
            )
        claimed = claim_next_dataset(session, owner)
        if claimed is None:
            return None
        dataset, lease = claimed
        return ClaimedDataset(lease, dataset.kind, dict(dataset.options))


def ingest(settings: Settings, dataset: ClaimedDataset) -> None:
    """Decode the dataset's upload and record the outcome; the upload is removed once it is."""
    lease = dataset.lease
    reply = run_decoder(settings, dataset)
    if reply.died is not None:
        log.error("dataset %s: its decoding process %s", dataset.id, reply.died)
        with session_scope(write=True) as session:
            queued = decoder_died(session, lease, reply.died)
        log.warning(
            "dataset %s %s after attempt %d of %d",
            dataset.id,
            "queued again" if queued else "failed",
            lease.attempt,
            lease.max_attempts,
        )
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
            shutil.rmtree(dataset_folder(settings.data_dir, dataset.id), ignore_errors=True)
        return
    with session_scope(write=True) as session:
        kept = finish_dataset(session, lease, reply.result)
    if not kept:  # deleted while we decoded it
        shutil.rmtree(dataset_folder(settings.data_dir, dataset.id), ignore_errors=True)
        return
    upload.unlink(missing_ok=True)
    log.info("dataset %s ready: %s", dataset.id, reply.result.counts)


def run_decoder(settings: Settings, dataset: ClaimedDataset) -> DecoderReply:
    """Decode the dataset in a child process; its answer, or how it died."""
    request = DecodeRequest(dataset.id, dataset.kind, dataset.options, parent_pid=os.getpid())
    # Its own session: a Ctrl-C meant for the worker lets the decoding finish, as the worker does.
    process = subprocess.Popen(
        [sys.executable, "-m", "workers.decoder"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    lease = dataset.lease
    log.info(
        "dataset %s: decoding %s in process %d (attempt %d of %d)",
        dataset.id,
        upload_path(settings.data_dir, dataset.id),
        process.pid,
        lease.attempt,
        lease.max_attempts,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(json.dumps(asdict(request)).encode())
        process.stdin.close()
    except BrokenPipeError:
        pass  # it died at once: its status says how
    answer = process.stdout.read()
    process.stdout.close()
    # wait4, not wait: the child's peak memory comes with its status.
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    peak = f"peak memory {usage.ru_maxrss // KIB_PER_MIB} MiB"
    if process.returncode < 0:
        name = signal.Signals(-process.returncode).name
        return DecoderReply(died=f"was killed by {name} ({peak})")
    if process.returncode != 0:
        return DecoderReply(died=f"exited with code {process.returncode} ({peak})")
    try:
        reply = json.loads(answer.decode(errors="replace").strip().splitlines()[-1])
        if "result" in reply:
            return DecoderReply(result=IngestResult(**reply["result"]))
        return DecoderReply(error=str(reply["error"]))
    except (IndexError, ValueError, TypeError, KeyError):
        return DecoderReply(died=f"ended without an answer ({peak})")
