"""The artifact store's interface: publish a local file under a key, open a verified copy, delete,
list for cleanup, and say whether the store answers.

A key is a relative, slash-separated name (`jobs/7/model-attempt1.pt`). Publication is atomic:
a reader sees nothing under a key, or a whole file. Readers find keys in the database, never by
listing; the sha256 recorded there is checked before any byte is used.
"""

import base64
import contextlib
import hashlib
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

HASH_CHUNK_BYTES = 1024 * 1024
# Linux's names for a process's open files: opening one reaches the open file itself, even when
# its own name has since been removed or given to another file.
OPEN_FILES = Path("/proc/self/fd")
_KEY = re.compile(r"^[A-Za-z0-9._=-]+(/[A-Za-z0-9._=-]+)*$")


@dataclass(frozen=True)
class Published:
    """What a publication stored: under which key, how many bytes, and their sha256."""

    key: str
    size: int
    sha256: str


@dataclass(frozen=True)
class StoredObject:
    """One object a listing found: its key, size and when it was last written (POSIX time)."""

    key: str
    size: int
    modified_at: float


@dataclass(frozen=True)
class UnfinishedUpload:
    """A bucket's multipart upload begun and neither completed nor aborted."""

    key: str
    upload_id: str
    started_at: float  # POSIX time


class StoreError(Exception):
    """The artifact store failed; the message names the store (and the key, when there is one)."""


class ArtifactMissing(StoreError):
    """Nothing is stored under the key."""


class ArtifactDamaged(StoreError):
    """The bytes under the key are not those recorded when they were published."""


class StoreRefused(StoreError):
    """The store answered and refused (credentials, permissions, a missing bucket, a request it
    takes for invalid): waiting would not change that, so it is no outage."""


def check_key(key: str) -> str:
    """`key`, or ValueError when it is not a relative name made of plain parts."""
    if not _KEY.match(key) or any(part in (".", "..") for part in key.split("/")):
        raise ValueError(f"not an artifact key: {key!r}")
    return key


def file_digest(file: BinaryIO) -> tuple[int, str]:
    """The size and sha256 of what is left to read in `file`, read in chunks."""
    digest, size = hashlib.sha256(), 0
    while chunk := file.read(HASH_CHUNK_BYTES):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def content_md5(path: Path) -> str:
    """The file's MD5 as S3's Content-MD5 header takes it (base64 of the digest)."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as file:
        while chunk := file.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode()


def path_of_open(file: BinaryIO, name: Path, description: str) -> Path:
    """A path to the open `file` itself, valid while it stays open: /proc/self/fd/N on Linux;
    elsewhere `name`, when it still names that file (else a StoreError: read it again)."""
    if OPEN_FILES.is_dir():
        return OPEN_FILES / str(file.fileno())
    try:
        same = os.stat(name).st_ino == os.fstat(file.fileno()).st_ino
    except FileNotFoundError:
        same = False
    if not same:
        raise StoreError(f"{description}: {name} changed after it was verified; read it again")
    return name


def damaged(description: str, key: str, actual: str, expected: str) -> ArtifactDamaged:
    return ArtifactDamaged(
        f"{description}: {key} is damaged: its sha256 is {actual}, not the {expected} recorded "
        "when it was written; it was not used"
    )


class ArtifactStore(ABC):
    """Where the files that outlive a process are kept."""

    description: str  # names the store in every message: "artifact store s3://..."

    @abstractmethod
    def staging_path(self, key: str) -> Path:
        """A new local path to write the file that `publish(..., key)` then takes."""

    @abstractmethod
    def publish(self, staged: Path, key: str) -> Published:
        """Store the file at `staged` under `key`, whole or not at all, streamed from disk."""

    @abstractmethod
    def open(self, key: str, sha256: str | None) -> AbstractContextManager[BinaryIO]:
        """A local copy of `key`, opened for reading, whose sha256 is `sha256` (when given, else
        the one recorded when it was published, where the store keeps it); ArtifactMissing or
        ArtifactDamaged otherwise."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove `key`; nothing happens when it is already gone."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> None:
        """Remove every key under `prefix/`."""

    @abstractmethod
    def list(self, prefix: str) -> Iterator[StoredObject]:
        """The objects under `prefix/`: for cleanups only, readers follow the database."""

    @abstractmethod
    def remove_staged(self, prefix: str) -> None:
        """Remove files a killed process staged for `prefix/` and never published."""

    @abstractmethod
    def problem(self, *, writes: bool = False) -> str | None:
        """Why the store cannot be used now (naming it), or None when it answers; with `writes`,
        also when it refuses to store a file (a credential that may only read)."""

    @contextlib.contextmanager
    def open_path(self, key: str, sha256: str) -> Iterator[Path]:
        """As `open`, for readers that take a path (an archive, a memory-mapped tensor file): a
        path to the verified file itself, held open while the context is, so that what is read
        through it is what was checked whatever becomes of the file's name meanwhile (removed,
        evicted from a cache, replaced by another process's copy)."""
        with self.open(key, sha256) as file:
            yield path_of_open(file, Path(file.name), self.description)

    def publish_new(self, key: str, write: Callable[[Path], object]) -> Published:
        """Publish under `key` the file `write(path)` makes; its staged copy is removed."""
        staged = self.staging_path(key)
        try:
            write(staged)
            return self.publish(staged, key)
        finally:
            staged.unlink(missing_ok=True)

    def publish_bytes(self, key: str, data: bytes) -> Published:
        return self.publish_new(key, lambda path: path.write_bytes(data))
