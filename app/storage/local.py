"""The artifact store as a folder on this machine (the default): a key is a path under it.

A file is published by renaming it into place from a temporary file beside it, fsynced first,
so that a reader finds the old file or the whole new one, and a crash leaves only a `.tmp` file
(removed by remove_staged). A failing disk is a StoreError naming the folder, as a failing
bucket is.
"""

import contextlib
import errno
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from app.fsync import fsync_folder
from app.storage.store import (
    ArtifactMissing,
    ArtifactStore,
    Published,
    StoredObject,
    StoreError,
    check_key,
    damaged,
    file_digest,
)

log = logging.getLogger("trainserve.storage")

TEMP_SUFFIX = ".tmp"


class LocalFolder(ArtifactStore):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = f"artifact store {root}"

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def staging_path(self, key: str) -> Path:
        # Beside the file it becomes, so that publishing is a rename on one filesystem.
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}"

    def _failed(self, what: str, exc: OSError) -> OSError | StoreError:
        """A full disk as it is (its job's failure says so, with the file and the folder);
        any other failure of the folder as the store's."""
        if exc.errno == errno.ENOSPC:
            return exc
        return StoreError(f"{self.description}: {what}: {exc.strerror or exc}")

    def publish(self, staged: Path, key: str) -> Published:
        target = self.path(key)
        try:
            with staged.open("rb") as file:
                size, sha256 = file_digest(file)
                os.fsync(file.fileno())
            os.replace(staged, target)
            fsync_folder(target.parent)
        except OSError as exc:
            raise self._failed(f"could not store {key}", exc) from exc
        return Published(key, size, sha256)

    @contextlib.contextmanager
    def open(self, key: str, sha256: str | None) -> Iterator[BinaryIO]:
        try:
            file = self.path(key).open("rb")
        except (FileNotFoundError, NotADirectoryError):
            raise ArtifactMissing(f"{self.description}: {key} is missing") from None
        except OSError as exc:
            raise self._failed(f"could not read {key}", exc) from exc
        with file:
            if sha256 is not None:
                # Checked on the open file: the bytes used are the bytes checked.
                _, actual = file_digest(file)
                if actual != sha256:
                    raise damaged(self.description, key, actual, sha256)
                file.seek(0)
            yield file

    def delete(self, key: str) -> None:
        try:
            self.path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise self._failed(f"could not delete {key}", exc) from exc

    def delete_prefix(self, prefix: str) -> None:
        # Its folder goes with it, half-written temporaries included.
        try:
            shutil.rmtree(self.path(prefix))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise self._failed(f"could not delete {prefix}/", exc) from exc

    def remove_staged(self, prefix: str) -> None:
        folder = self.path(prefix)
        for leftover in folder.glob(f".*{TEMP_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
        with contextlib.suppress(OSError):  # not empty, or gone: kept as it is
            folder.rmdir()  # made for a file never published

    def list(self, prefix: str) -> Iterator[StoredObject]:
        folder = self.path(prefix)
        if not folder.is_dir():
            return
        for path in sorted(folder.rglob("*")):
            with contextlib.suppress(FileNotFoundError):
                status = path.stat()
                if path.is_file():
                    key = path.relative_to(self.root).as_posix()
                    yield StoredObject(key, status.st_size, status.st_mtime)

    def problem(self, *, writes: bool = False) -> str | None:
        return None  # a folder that cannot be written says so where it is written
