"""Image-folder archives (zip or tar.gz) read safely: nothing is extracted to disk.

Every entry's name and kind are checked before its bytes are read: no absolute paths, no `..`, no
links or devices. The number of entries, the bytes they expand to and the expansion ratio are
limited, and the limits are enforced on the bytes actually produced, not only on what headers
declare, so a lying header cannot get past them.
"""

import gzip
import io
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

SPLITS = ("train", "test")
# Files that archivers and desktops leave behind; skipped, not refused.
JUNK_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
JUNK_FOLDERS = frozenset({"__MACOSX"})
# What the readers raise on damaged or lying data.
DAMAGED = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)


class ArchiveRejected(Exception):
    """The archive is unsafe or not laid out as train/<class>/...; the message says why."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_entries: int = 200_000
    max_total_bytes: int = 8 * 1024**3
    max_entry_bytes: int = 64 * 1024**2
    # Uncompressed bytes per compressed byte, over the whole archive (JPEG and PNG barely
    # compress; text or blank images compress a lot, but not a thousandfold).
    max_ratio: float = 200.0
    # Decoded, the images must fit in a worker's memory (with room for the copies training makes).
    max_decoded_bytes: int = 4 * 1024**3


@dataclass(frozen=True)
class Member:
    """One image of the archive: its split, its class and where it is in the archive."""

    name: str
    split: str
    label: str


@dataclass(frozen=True)
class Layout:
    members: list[Member]
    ignored: int  # junk and folder entries skipped

    def classes(self, split: str) -> list[str]:
        return sorted({m.label for m in self.members if m.split == split})


def archive_kind(path: Path) -> str | None:
    """ "zip" or "tar.gz" from the file's first bytes; None for anything else."""
    with path.open("rb") as file:
        head = file.read(4)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "tar.gz"
    return None


def _safe_parts(name: str) -> list[str]:
    """The path's parts, or ArchiveRejected when it could land outside the archive's folder."""
    if "\\" in name or "\x00" in name:
        raise ArchiveRejected(f"unsafe entry name {name!r}: backslashes and NUL are not allowed")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ArchiveRejected(f"unsafe entry name {name!r}: absolute paths are not allowed")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ArchiveRejected(f"unsafe entry name {name!r}: '..' is not allowed")
    return parts


class _Counter(io.RawIOBase):
    """Passes a stream through, failing once it has produced more bytes than allowed."""

    def __init__(self, inner: io.BufferedIOBase, allowed: int, why: str) -> None:
        self.inner, self.allowed, self.why, self.produced = inner, allowed, why, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.inner.read(len(buffer))
        self.produced += len(data)
        if self.produced > self.allowed:
            raise ArchiveRejected(self.why)
        buffer[: len(data)] = data
        return len(data)


class ImageArchive:
    """A zip or tar.gz archive of train/<class>/<image> (and test/<class>/<image>) files."""

    def __init__(self, path: Path, limits: ArchiveLimits | None = None) -> None:
        self.path, self.limits = path, limits or ArchiveLimits()
        kind = archive_kind(path)
        if kind is None:
            raise ArchiveRejected("the file is neither a zip nor a tar.gz archive")
        self.kind = kind
        self.size = max(1, path.stat().st_size)

    @property
    def allowed_bytes(self) -> int:
        return int(min(self.limits.max_total_bytes, self.limits.max_ratio * self.size))

    def _too_big(self) -> str:
        return (
            f"the archive expands to more than {self.allowed_bytes} bytes (at most "
            f"{self.limits.max_total_bytes} bytes, and {self.limits.max_ratio:g} times its own "
            "size): refused as a possible archive bomb"
        )

    # -- what is in it -----------------------------------------------------------------------

    def _entries(self) -> Iterator[tuple[str, str, int]]:
        """(name, kind, declared size) of every entry; kind is "file", "dir" or "other"."""
        if self.kind == "zip":
            try:
                archive = zipfile.ZipFile(self.path)
            except zipfile.BadZipFile as exc:
                raise ArchiveRejected(f"the zip archive is damaged: {exc}") from None
            with archive:
                for info in archive.infolist():
                    mode = info.external_attr >> 16
                    if stat.S_ISLNK(mode):
                        yield info.filename, "link", 0
                    elif info.is_dir():
                        yield info.filename, "dir", 0
                    else:
                        yield info.filename, "file", info.file_size
            return
        for member in self._tar_members():
            if member.issym() or member.islnk():
                yield member.name, "link", 0
            elif member.isdir():
                yield member.name, "dir", 0
            elif member.isfile():
                yield member.name, "file", member.size
            else:
                yield member.name, "other", 0

    def _tar_members(self) -> Iterator[tarfile.TarInfo]:
        with gzip.open(self.path) as unzipped:
            counted = io.BufferedReader(_Counter(unzipped, self.allowed_bytes, self._too_big()))
            try:
                with tarfile.open(fileobj=counted, mode="r|") as archive:
                    yield from archive
            except (*DAMAGED, OSError) as exc:
                raise ArchiveRejected(f"the tar.gz archive is damaged: {exc}") from None

    def layout(self) -> Layout:
        """The images it holds by split and class; ArchiveRejected for anything unsafe."""
        limits = self.limits
        files: list[tuple[str, list[str]]] = []
        ignored = entries = declared = 0
        for name, kind, size in self._entries():
            entries += 1
            if entries > limits.max_entries:
                raise ArchiveRejected(f"the archive has more than {limits.max_entries} entries")
            parts = _safe_parts(name)
            if kind == "link":
                raise ArchiveRejected(f"links are not allowed: {name!r}")
            if kind == "other":
                raise ArchiveRejected(f"only files and folders are allowed: {name!r}")
            if kind == "dir" or not parts or _is_junk(parts):
                ignored += 1
                continue
            if size > limits.max_entry_bytes:
                raise ArchiveRejected(
                    f"{name!r} is {size} bytes; an image may have at most "
                    f"{limits.max_entry_bytes} bytes"
                )
            declared += size
            if declared > self.allowed_bytes:
                raise ArchiveRejected(self._too_big())
            files.append((name, parts))
        members = _members(files)
        return Layout(members=members, ignored=ignored + len(files) - len(members))

    # -- reading -----------------------------------------------------------------------------

    def read(self, wanted: set[str]) -> Iterator[tuple[str, bytes]]:
        """(name, bytes) of the wanted files, in archive order, counting what they expand to."""
        produced = 0
        for name, data in self._files(wanted):
            produced += len(data)
            if produced > self.allowed_bytes:
                raise ArchiveRejected(self._too_big())
            yield name, data

    def _files(self, wanted: set[str]) -> Iterator[tuple[str, bytes]]:
        try:
            yield from self._unchecked_files(wanted)
        except (
            zipfile.BadZipFile,
            tarfile.TarError,
            EOFError,
            zlib.error,
            gzip.BadGzipFile,
        ) as exc:
            raise ArchiveRejected(f"the archive is damaged: {exc}") from None

    def _unchecked_files(self, wanted: set[str]) -> Iterator[tuple[str, bytes]]:
        cap = self.limits.max_entry_bytes
        if self.kind == "zip":
            with zipfile.ZipFile(self.path) as archive:
                for info in archive.infolist():
                    if info.filename in wanted:
                        with archive.open(info) as entry:
                            yield info.filename, _read_at_most(entry, cap, info.filename)
            return
        with gzip.open(self.path) as unzipped:
            counted = io.BufferedReader(_Counter(unzipped, self.allowed_bytes, self._too_big()))
            with tarfile.open(fileobj=counted, mode="r|") as archive:
                for member in archive:
                    if member.isfile() and member.name in wanted:
                        stream = archive.extractfile(member)
                        assert stream is not None
                        yield member.name, _read_at_most(stream, cap, member.name)


def _read_at_most(entry: IO[bytes], cap: int, name: str) -> bytes:
    data = entry.read(cap + 1)
    if len(data) > cap:
        raise ArchiveRejected(f"{name!r} expands to more than {cap} bytes")
    return data


def _is_junk(parts: list[str]) -> bool:
    return any(p in JUNK_FOLDERS for p in parts) or parts[-1] in JUNK_NAMES or parts[-1][0] == "."


def _members(files: list[tuple[str, list[str]]]) -> list[Member]:
    """Files as split/class/image, one enclosing folder allowed around the splits."""
    if not files:
        raise ArchiveRejected("the archive holds no files: put images in train/<class>/")
    tops = {parts[0] for _, parts in files}
    strip = len(tops) == 1 and next(iter(tops)) not in SPLITS and all(len(p) > 1 for _, p in files)
    members = []
    for name, parts in files:
        inner = parts[1:] if strip else parts
        if len(inner) == 1:
            continue  # a README or licence beside the splits
        if len(inner) != 3 or inner[0] not in SPLITS:
            raise ArchiveRejected(
                f"unexpected entry {name!r}: images go in train/<class>/ or test/<class>/ "
                "(inside at most one enclosing folder)"
            )
        members.append(Member(name=name, split=inner[0], label=inner[1]))
    return members
