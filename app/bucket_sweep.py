"""Removing the objects of a bucket that no row refers to: models, predictions and checkpoints of
deleted jobs, checkpoints a finished job no longer records (a worker killed after publishing one,
before recording it), exports of deleted model versions, weights files whose row is gone, the
uploads and decoded tensors of deleted datasets (and a decoded dataset's upload, or tensors its
row does not record: an API killed before its row, a worker killed before it recorded them); and
multipart uploads a process left unfinished a day ago or more under those folders (the bucket
may be shared: another's uploads, elsewhere in it, are not ours to abort). Nothing of a queued
or running job, nor of a queued or decoding dataset, is touched: its worker may have published a
file it is about to record.

What a row refers to is never removed, and nothing written within the grace period is: an object
published a moment ago whose row is being committed. The rows are read first, then the bucket
listed: an object a row starts referring to after that read was published after it, so within
the grace period. A job's own files need none: its folder is left whole while it is queued or
running, and the transaction that ends it records what it published.
"""

import logging
import re
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.datasets.files import DATASETS_FOLDER, dataset_prefix
from app.db import session_scope
from app.exports.store import EXPORTS_FOLDER
from app.jobs.files import JOBS_FOLDER, job_prefix, predictions_key
from app.models import (
    Dataset,
    DatasetStatus,
    Job,
    JobStatus,
    ModelVersion,
    RegisteredModel,
    WeightsFile,
)
from app.storage.bucket import Bucket
from app.weights.files import WEIGHTS_FOLDER, weights_prefix

log = logging.getLogger("trainserve.sweep")

# An upload under way is never aborted: even a slow 1 GiB dataset upload ends well within this.
UNFINISHED_UPLOAD_AGE_S = 24 * 3600.0
EXPORT_KEY = re.compile(rf"^{EXPORTS_FOLDER}/([^/]+)/v(\d+)/")


@dataclass
class BucketSweep:
    """What one sweep of a bucket removed."""

    objects: int = 0
    bytes: int = 0
    uploads: int = 0  # unfinished multipart uploads aborted


@dataclass(frozen=True)
class References:
    keys: set[str]  # job and dataset files rows name
    versions: set[tuple[str, int]]  # (model, version): their exports
    # Everything under these: unfinished jobs' and datasets', and weights files' folders.
    prefixes: set[str]


def references(session: Session) -> References:
    """Every key a job, a dataset or a model version refers to, and every version's
    exports."""
    keys: set[str] = set()
    prefixes = {f"{weights_prefix(row)}/" for row in session.scalars(select(WeightsFile.id))}
    jobs = session.execute(
        select(
            Job.id,
            Job.status,
            Job.attempts,
            Job.model_path,
            Job.checkpoint_key,
            Job.previous_checkpoint_key,
        )
    )
    for job_id, status, attempts, *files in jobs:
        keys.update(key for key in files if key is not None)
        if status in (JobStatus.QUEUED, JobStatus.RUNNING):
            prefixes.add(f"{job_prefix(job_id)}/")
        if status == JobStatus.SUCCEEDED:
            keys.add(predictions_key(job_id, attempts))
    keys.update(session.scalars(select(ModelVersion.model_path)))
    datasets = session.execute(
        select(Dataset.id, Dataset.status, Dataset.upload_key, Dataset.tensors_key)
    )
    for dataset_id, status, *files in datasets:
        keys.update(key for key in files if key is not None)
        if status in (DatasetStatus.QUEUED, DatasetStatus.INGESTING):
            prefixes.add(f"{dataset_prefix(dataset_id)}/")
    versions = session.execute(
        select(RegisteredModel.name, ModelVersion.version).join(
            RegisteredModel, RegisteredModel.id == ModelVersion.model_id
        )
    )
    return References(keys, {(name, number) for name, number in versions}, prefixes)


def _referenced(key: str, refs: References) -> bool:
    export = EXPORT_KEY.match(key)
    if export is not None:
        return (export[1], int(export[2])) in refs.versions
    return key in refs.keys or _folder(key) in refs.prefixes


def _folder(key: str) -> str:
    return "/".join(key.split("/")[:2]) + "/"  # jobs/7/, datasets/<id>/ or weights/<id>/


def sweep_bucket(
    bucket: Bucket, cutoff: float, uploads_older_than_s: float = UNFINISHED_UPLOAD_AGE_S
) -> BucketSweep:
    """Remove what no row refers to and was written before `cutoff` (POSIX time), and abort
    the uploads begun before both `cutoff` and `uploads_older_than_s` ago."""
    with session_scope() as session:
        refs = references(session)
    swept = BucketSweep()
    uploads_cutoff = min(cutoff, time.time() - uploads_older_than_s)
    for folder in (JOBS_FOLDER, DATASETS_FOLDER, EXPORTS_FOLDER, WEIGHTS_FOLDER):
        for stored in bucket.list(folder):
            if stored.modified_at < cutoff and not _referenced(stored.key, refs):
                bucket.delete(stored.key)
                swept.objects += 1
                swept.bytes += stored.size
        for upload in bucket.unfinished_uploads(folder):
            if upload.started_at < uploads_cutoff and _folder(upload.key) not in refs.prefixes:
                bucket.abort_upload(upload)
                swept.uploads += 1
    return swept
