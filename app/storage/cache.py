"""Verified copies of a bucket's objects on this machine, named by their sha256: a file enters
whole (fsynced, then renamed into place) and only once its digest matched; beyond a size, the
least recently used go, never one that is open.

The processes of one machine may share the folder: a reader holds a shared lock on the file it
has open, and eviction removes only a file it can lock exclusively. A file is locked before it is
renamed into place, so that no eviction can take it between its publication and its first use.
"""

import contextlib
import fcntl
import logging
import os
import re
import time
import uuid
from pathlib import Path
from typing import BinaryIO

from app.storage.store import damaged, file_digest

log = logging.getLogger("trainserve.storage")

PARTIAL_PREFIX = ".partial-"
# A download or a staged upload left this long is one a killed process left behind.
STALE_TEMPORARY_S = 24 * 3600.0
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class FileCache:
    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder, self.max_bytes = folder, max_bytes
        folder.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        """Where the file with this digest is kept (while one holds it open, it stays there)."""
        return self.folder / sha256

    def open(self, sha256: str) -> BinaryIO | None:
        """The cached file with this digest, opened and marked as used now; None when absent."""
        path = self.folder / sha256
        try:
            file = path.open("rb")
        except FileNotFoundError:
            return None
        # Evicted between the open and the lock: unlinked, but whole, and ours until closed.
        fcntl.flock(file, fcntl.LOCK_SH)
        with contextlib.suppress(FileNotFoundError):
            now = time.time()  # finer than the filesystem's own clock: uses stay in order
            os.utime(path, (now, now))
        return file

    def open_checked(self, sha256: str, key: str) -> BinaryIO | None:
        """As `open`, the file's digest checked again (a disk may change a byte too): a
        damaged copy of `key` is removed, said in the log, and None answered (fetch it again)."""
        file = self.open(sha256)
        if file is None:
            return None
        _, actual = file_digest(file)
        if actual == sha256:
            file.seek(0)
            return file
        file.close()
        log.error("%s", damaged(f"the cache {self.folder}", key, actual, sha256))
        (self.folder / sha256).unlink(missing_ok=True)  # an open copy stays whole for its reader
        return None

    def temporary_path(self) -> Path:
        """Where to download a file before `add` takes it."""
        return self.folder / f"{PARTIAL_PREFIX}{uuid.uuid4().hex}"

    def add(self, temporary: Path, sha256: str) -> BinaryIO:
        """Take the verified file at `temporary` in under its digest; it, opened."""
        file = temporary.open("rb")
        try:
            os.fsync(file.fileno())  # a power cut must not leave a short file under the name
            # Held from before the rename: an eviction finds it in use from its first moment.
            fcntl.flock(file, fcntl.LOCK_SH)
            os.replace(temporary, self.folder / sha256)
        except BaseException:
            file.close()
            raise
        self.evict()
        return file

    def evict(self) -> None:
        """Remove least recently used files until the cache fits its size, skipping the ones
        open anywhere on this machine; and temporaries a killed process left."""
        self.remove_temporaries(time.time() - STALE_TEMPORARY_S)
        entries = []
        for path in self.folder.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if _SHA256.match(path.name):
                    status = path.stat()
                    entries.append((status.st_mtime, status.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            if _remove_unless_open(path):
                total -= size

    def remove_temporaries(self, cutoff: float) -> int:
        """Remove the downloads and staged uploads last written before `cutoff` (POSIX time):
        a killed process's (an API killed mid-upload leaves up to a whole archive). How many."""
        removed = 0
        for path in self.folder.glob(f"{PARTIAL_PREFIX}*"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
        return removed

    def size(self) -> int:
        """The bytes of the cached files."""
        return sum(p.stat().st_size for p in self.folder.iterdir() if _SHA256.match(p.name))


def _remove_unless_open(path: Path) -> bool:
    try:
        file = path.open("rb")
    except FileNotFoundError:
        return False
    with file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # being read
        try:
            if os.stat(path).st_ino != os.fstat(file.fileno()).st_ino:
                return False  # published again since it was opened here, and in use
        except FileNotFoundError:
            return False
        path.unlink(missing_ok=True)
    return True
