"""Removing files that no row refers to: uploads a crash left before their row was created, the
folders of datasets, weights files and jobs whose rows are gone (a dataset's in the artifacts
folder, and under the data folder from before the store), the exports of deleted model versions,
the files in finished jobs' and datasets' folders that their row does not record
(app/sweep_unrecorded.py); with a bucket as the artifact store, its objects no row refers to
(app/bucket_sweep.py).

It never removes what a row refers to, and leaves alone anything changed within the grace
period: an upload being received and checked, a dataset folder whose row is being committed.
The check and the removal share one write transaction, so that on SQLite, which can give a
deleted job's id to the next job, no job is created between them.
"""

import asyncio
import contextlib
import logging
import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.datasets.files import DATASETS_FOLDER, ID_PREFIX, INCOMING_FOLDER
from app.db import session_scope
from app.exports.store import EXPORTS_FOLDER
from app.jobs.files import JOBS_FOLDER
from app.models import JOB_ID_MAX, Dataset, Job, ModelVersion, RegisteredModel, WeightsFile
from app.settings import Settings
from app.storage.local import LocalFolder
from app.storage.store import ArtifactStore
from app.sweep_unrecorded import unrecorded_files
from app.weights.files import WEIGHTS_FOLDER
from app.weights.ids import WEIGHTS_ID_PATTERN

log = logging.getLogger("trainserve.sweep")

DATASET_ID = re.compile(rf"^{re.escape(ID_PREFIX)}[0-9a-f]{{12}}$")
# Uploads kept in a folder of their own, named by their row's id: kind -> (id, table).
UPLOADS: dict[str, tuple[re.Pattern[str], type[Dataset | WeightsFile]]] = {
    "datasets": (DATASET_ID, Dataset),
    "weights": (re.compile(WEIGHTS_ID_PATTERN), WeightsFile),
}
VERSION_FOLDER = re.compile(r"^v(\d+)$")


@dataclass
class SweepReport:
    """What one sweep removed: entries of each kind, and the bytes their files held."""

    # uploads: left under incoming/ by a crash before their row; datasets, weights and jobs:
    # folders whose row is gone (a job's models, checkpoints and test predictions); exports: of
    # deleted model versions; unrecorded: files in finished jobs' checkpoints and finished
    # datasets' folders that no row records; objects and multipart: of the bucket, when the
    # artifacts are in one.
    removed: Counter[str] = field(default_factory=Counter)
    bytes: int = 0
    bucket: str | None = None  # the bucket swept, as its store names it

    def remove(self, kind: str, entry: Path) -> None:
        """Remove `entry` (a file or a folder) and count it under `kind`."""
        size = sum(size for _, size in _walk(entry))
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                os.unlink(entry)
        except FileNotFoundError:
            return  # removed meanwhile, by its own delete or another sweep
        except OSError as exc:
            log.warning("sweep could not remove %s: %s", entry, exc)
            return
        self.removed[kind] += 1
        self.bytes += size

    def __str__(self) -> str:
        counts = self.removed
        in_bucket = (
            ""
            if self.bucket is None
            else f", {counts['objects']} object(s) no row refers to and {counts['multipart']} "
            f"unfinished multipart upload(s) in the {self.bucket}"
        )
        return (
            f"{counts['uploads']} unfinished upload(s), {counts['datasets']} folder(s) of "
            f"deleted datasets, {counts['weights']} folder(s) of deleted weights files, "
            f"{counts['jobs']} folder(s) of deleted jobs, {counts['exports']} export folder(s) "
            f"of deleted model versions, {counts['unrecorded']} unrecorded file(s) of finished "
            f"jobs and datasets{in_bucket}: {self.bytes} bytes"
        )


def sweep_unreferenced_files(
    data_dir: Path, artifacts_dir: Path, grace_s: float, store: ArtifactStore | None = None
) -> SweepReport:
    """Remove what no row refers to and nothing has changed for `grace_s`; what was removed.
    The artifacts are the folder `artifacts_dir`, unless `store` is a bucket."""
    cutoff = time.time() - grace_s
    report = SweepReport()
    local_artifacts = store is None or isinstance(store, LocalFolder)
    with session_scope(write=True) as session:
        for entry in _children(data_dir / INCOMING_FOLDER):
            if _settled(entry, cutoff):
                report.remove("uploads", entry)
        _sweep_uploads(session, "datasets", data_dir / DATASETS_FOLDER, cutoff, report)
        if local_artifacts:
            _sweep_artifacts_folder(session, artifacts_dir, cutoff, report)
    if not local_artifacts:
        assert store is not None
        _sweep_bucket(store, cutoff, report)
    return report


def _sweep_uploads(
    session: Session, kind: str, folder: Path, cutoff: float, report: SweepReport
) -> None:
    """The folders in `folder` of uploads of `kind` whose row is gone."""
    named, table = UPLOADS[kind]
    for entry in _children(folder):
        if (
            named.match(entry.name)
            and session.get(table, entry.name) is None
            and _settled(entry, cutoff)
        ):
            report.remove(kind, entry)


def _sweep_artifacts_folder(
    session: Session, artifacts_dir: Path, cutoff: float, report: SweepReport
) -> None:
    """The folders of deleted jobs, datasets and weights files, the exports of deleted model
    versions, and the files finished jobs and datasets do not record."""
    for entry in _children(artifacts_dir / JOBS_FOLDER):
        if (
            entry.name.isdigit()
            and int(entry.name) <= JOB_ID_MAX
            and not _job_exists(session, int(entry.name))
            and _settled(entry, cutoff)
        ):
            report.remove("jobs", entry)
    _sweep_uploads(session, "datasets", artifacts_dir / DATASETS_FOLDER, cutoff, report)
    _sweep_uploads(session, "weights", artifacts_dir / WEIGHTS_FOLDER, cutoff, report)
    for model_folder in _children(artifacts_dir / EXPORTS_FOLDER):
        for entry in _children(model_folder):
            number = VERSION_FOLDER.match(entry.name)
            if (
                number
                and not _version_exists(session, model_folder.name, int(number[1]))
                and _settled(entry, cutoff)
            ):
                report.remove("exports", entry)
        _remove_if_empty(model_folder, cutoff)
    finished_before = datetime.fromtimestamp(cutoff, UTC)
    for path in unrecorded_files(session, artifacts_dir, finished_before):
        if _settled(path, cutoff):
            report.remove("unrecorded", path)


def _sweep_bucket(store: ArtifactStore, cutoff: float, report: SweepReport) -> None:
    # Imported here: boto3 is loaded only where a bucket is used.
    from app.bucket_sweep import sweep_bucket
    from app.storage.bucket import Bucket

    assert isinstance(store, Bucket)
    swept = sweep_bucket(store, cutoff)
    if stale := store.cache.remove_temporaries(cutoff):
        log.info(
            "sweep removed %d stale download(s) and staged upload(s) from %s",
            stale,
            store.cache.folder,
        )
    report.bucket = store.description
    report.removed += Counter(objects=swept.objects, multipart=swept.uploads)
    report.bytes += swept.bytes


def sweep_and_log(
    data_dir: Path, artifacts_dir: Path, grace_s: float, store: ArtifactStore | None = None
) -> SweepReport:
    """One sweep, reported in the log (at info when it removed something)."""
    report = sweep_unreferenced_files(data_dir, artifacts_dir, grace_s, store)
    if report.removed:
        log.info("sweep removed %s", report)
    else:
        log.debug("sweep removed nothing")
    return report


async def sweep_periodically(settings: Settings, store: ArtifactStore) -> None:
    """Sweep now, then every TRAINSERVE_SWEEP_INTERVAL_SECONDS, until cancelled."""
    while True:
        try:
            await asyncio.to_thread(
                sweep_and_log,
                settings.data_dir,
                settings.artifacts_dir,
                settings.sweep_grace_seconds,
                store,
            )
        except Exception:
            log.exception(
                "sweep failed; the next one is in %.0f s", settings.sweep_interval_seconds
            )
        await asyncio.sleep(settings.sweep_interval_seconds)


def _job_exists(session: Session, job_id: int) -> bool:
    if session.get(Job, job_id) is not None:
        return True
    # A version's model file is under its job's folder; a job with versions cannot be deleted,
    # but the files a version serves are never removed on that rule alone.
    prefix = f"{JOBS_FOLDER}/{job_id}/"
    served = select(ModelVersion.id).where(ModelVersion.model_path.startswith(prefix)).limit(1)
    return session.scalar(served) is not None


def _version_exists(session: Session, model: str, version: int) -> bool:
    found = (
        select(ModelVersion.id)
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
        .where(RegisteredModel.name == model, ModelVersion.version == version)
    )
    return session.scalar(found) is not None


def _remove_if_empty(folder: Path, cutoff: float) -> None:
    """A model's exports folder emptied by an earlier sweep, and not just made for a new one."""
    if folder.is_dir() and not _children(folder) and folder.stat().st_mtime < cutoff:
        with contextlib.suppress(OSError):  # a new export's folder came meanwhile
            folder.rmdir()


def _children(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _settled(entry: Path, cutoff: float) -> bool:
    """Nothing in `entry` (a file or a folder) has changed since `cutoff`."""
    return all(mtime < cutoff for mtime, _ in _walk(entry))


def _walk(entry: Path) -> Iterator[tuple[float, int]]:
    """The modification time and size of `entry` and of everything under it."""
    try:
        status = entry.lstat()
    except FileNotFoundError:
        return
    yield status.st_mtime, status.st_size if entry.is_file() else 0
    if entry.is_dir() and not entry.is_symlink():
        for child in _children(entry):
            yield from _walk(child)
