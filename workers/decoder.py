"""The process that decodes one uploaded dataset, apart from its worker (`python -m
workers.decoder`): an upload that crashes the decoder or exhausts memory takes down this process
only, and the worker reports how it died. It reads the dataset to decode as JSON on stdin and
answers one JSON line on stdout: {"result": {...}}, {"error": "<message for the user>"},
{"store_failed": "<message>"} when the artifact store could not be used, or {"store_refused":
"<message>"} when it refused the request (credentials, a missing bucket)."""

import contextlib
import errno
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from app.datasets.files import legacy_upload_path, tensors_key
from app.datasets.state import IngestResult
from app.logs import configure_logging
from app.ml.archives import ArchiveRejected
from app.ml.csv_tables import TableRejected
from app.ml.image_folders import decode_archive, save_image_folders
from app.ml.table_datasets import prepare_table, save_table_dataset
from app.parent_death import signal_when_parent_dies
from app.settings import Settings, get_settings
from app.storage.config import open_store
from app.storage.outages import StoreOutageLog, retry_through_store_outages
from app.storage.store import (
    ArtifactDamaged,
    ArtifactMissing,
    ArtifactStore,
    Published,
    StoreError,
    StoreRefused,
)

log = logging.getLogger("trainserve.worker")
T = TypeVar("T")


@dataclass(frozen=True)
class DecodeRequest:
    id: str
    kind: str
    options: dict[str, Any]
    parent_pid: int
    attempt: int
    # Where the upload is in the artifact store; None for one uploaded before it went there.
    upload_key: str | None
    upload_sha256: str | None


class Decoding:
    """One request's decoding: its upload fetched from the store (through this machine's cache,
    verified by its sha256), its tensors published there; the store's outages waited out."""

    def __init__(self, settings: Settings, store: ArtifactStore, request: DecodeRequest) -> None:
        self.settings, self.store, self.request = settings, store, request
        self.outages = StoreOutageLog(log, f"dataset {request.id}")

    def in_store(self, call: Callable[[], T]) -> T:
        limit_s = self.settings.store_outage_limit_seconds
        return retry_through_store_outages(call, self.outages, limit_s)

    @contextlib.contextmanager
    def upload(self) -> Iterator[Path]:
        request = self.request
        if request.upload_key is None or request.upload_sha256 is None:
            yield legacy_upload_path(self.settings.data_dir, request.id)
            return
        key, sha256 = request.upload_key, request.upload_sha256
        with contextlib.ExitStack() as opened:
            path = self.in_store(lambda: opened.enter_context(self.store.open_path(key, sha256)))
            try:
                yield path
            except FileNotFoundError as exc:
                # Its local copy went while read: the upload itself is in the store, untouched
                # (its row says so), so this attempt failed the store's way, to be tried again.
                raise StoreError(f"{self.store.description}: reading {key}: {exc}") from exc

    def publish(self, write: Callable[[Path], object]) -> Published:
        key = tensors_key(self.request.id, self.request.kind, self.request.attempt)
        return self.in_store(lambda: self.store.publish_new(key, write))

    def run(self) -> IngestResult:
        """Read the upload into the file jobs train from and publish that; what it holds."""
        with self.upload() as upload:
            result, write = self._decode(upload, self.request.options)
        tensors = self.publish(write)
        return replace(result, tensors_key=tensors.key, tensors_sha256=tensors.sha256)

    def _decode(
        self, upload: Path, options: dict[str, Any]
    ) -> tuple[IngestResult, Callable[[Path], None]]:
        """What the upload holds, and how to write the tensors decoded from it."""
        split = {"test_fraction": options["test_fraction"], "seed": options["seed"]}
        if self.request.kind == "tabular":
            table = prepare_table(upload, target=options["target"], drop=options["drop"], **split)
            described = IngestResult(
                classes=table.classes,
                counts=table.counts(),
                test_split="drawn",
                feature_columns=table.standardizer.columns,
            )
            return described, lambda path: save_table_dataset(table, path)
        folders = decode_archive(upload, image_size=options["image_size"], **split)
        described = IngestResult(
            classes=folders.classes,
            counts=folders.counts(),
            test_split=folders.test_split,
            image_size=folders.image_size,
            ignored_files=folders.ignored,
        )
        return described, lambda path: save_image_folders(folders, path)


def reply_for(settings: Settings, exc: Exception) -> dict[str, Any]:
    """The answer for a decoding that failed: {"error": what the user reads in the dataset's
    `error`}, or {"store_failed"/"store_refused": ...} when the store did (the dataset is tried
    again)."""
    if isinstance(exc, ArchiveRejected | TableRejected):
        return {"error": str(exc)}
    if isinstance(exc, ArtifactDamaged):
        return {"error": f"its upload cannot be used: {exc}; upload it again"}
    if isinstance(exc, ArtifactMissing | FileNotFoundError):
        return {"error": f"its upload is gone ({exc}); upload it again"}
    if isinstance(exc, StoreRefused):
        return {"store_refused": str(exc)}
    if isinstance(exc, StoreError):
        return {"store_failed": str(exc)}
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        where = settings.artifacts_dir
        return {"error": f"the disk is full: could not write under {where}"}
    log.exception("decoding a dataset failed")  # unexpected: keep the traceback
    return {"error": f"{type(exc).__name__}: {exc}"}


def _die_with_parent(parent_pid: int) -> None:
    """End this process when its worker ends (even by SIGKILL): the next attempt's decoder
    must not write the same files beside an orphan."""
    signal_when_parent_dies(signal.SIGKILL)
    if os.getppid() != parent_pid:  # the worker died before the line above
        os._exit(1)


def main() -> None:
    request = DecodeRequest(**json.loads(sys.stdin.read()))
    _die_with_parent(request.parent_pid)
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    if settings.failpoint_decode_pause_seconds:
        log.info(
            "dataset %s: decoder pausing %.1f s (fault injection)",
            request.id,
            settings.failpoint_decode_pause_seconds,
        )
        time.sleep(settings.failpoint_decode_pause_seconds)
    try:
        decoding = Decoding(settings, open_store(settings), request)
        reply: dict[str, Any] = {"result": asdict(decoding.run())}
    except Exception as exc:
        reply = reply_for(settings, exc)
    sys.stdout.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
