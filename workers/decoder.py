"""The process that decodes one uploaded dataset, apart from its worker (`python -m
workers.decoder`): an upload that crashes the decoder or exhausts memory takes down this process
only, and the worker reports how it died. It reads the dataset to decode as JSON on stdin and
answers one JSON line on stdout: {"result": {...}} or {"error": "<message for the user>"}."""

import errno
import json
import logging
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from app.datasets.files import images_path, table_path, upload_path
from app.datasets.state import IngestResult
from app.logs import configure_logging
from app.ml.archives import ArchiveRejected
from app.ml.csv_tables import TableRejected
from app.ml.image_folders import decode_archive, save_image_folders
from app.ml.table_datasets import prepare_table, save_table_dataset
from app.parent_death import signal_when_parent_dies
from app.settings import Settings, get_settings

log = logging.getLogger("trainserve.worker")


@dataclass(frozen=True)
class DecodeRequest:
    id: str
    kind: str
    options: dict[str, Any]
    parent_pid: int


def decode(settings: Settings, request: DecodeRequest) -> IngestResult:
    """Read the upload into the file jobs train from; what it holds."""
    upload, options = upload_path(settings.data_dir, request.id), request.options
    if request.kind == "tabular":
        table = prepare_table(
            upload,
            target=options["target"],
            drop=options["drop"],
            test_fraction=options["test_fraction"],
            seed=options["seed"],
        )
        save_table_dataset(table, table_path(settings.data_dir, request.id))
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
    save_image_folders(folders, images_path(settings.data_dir, request.id))
    return IngestResult(
        classes=folders.classes,
        counts=folders.counts(),
        test_split=folders.test_split,
        image_size=folders.image_size,
        ignored_files=folders.ignored,
    )


def failure_message(settings: Settings, exc: Exception) -> str:
    """What the user reads in the dataset's `error`."""
    if isinstance(exc, ArchiveRejected | TableRejected):
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return "its upload is gone from the server's disk; upload it again"
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"the disk is full: could not write under {settings.data_dir}"
    log.exception("decoding a dataset failed")  # unexpected: keep the traceback
    return f"{type(exc).__name__}: {exc}"


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
        reply: dict[str, Any] = {"result": asdict(decode(settings, request))}
    except Exception as exc:
        reply = {"error": failure_message(settings, exc)}
    sys.stdout.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
