"""A torch.save zip archive checked before torch reads it, so that reading it costs no more
memory than the file's own bytes.

torch.load reads an archive's pickle whole at the size its entry declares and would inflate a
compressed entry, so a small file could claim gigabytes. torch.save never compresses and writes
nothing but its entries; an archive that does otherwise was not written by it, and is refused.
"""

import zipfile
from typing import BinaryIO

# The pickle torch.save writes holds names and shapes, never tensor data: a state_dict with
# the largest number of tensors taken here needs a few MiB of it.
PICKLE_MAX_BYTES = 16 * 1024 * 1024
PICKLE_NAME = "data.pkl"
# Entries besides tensor storages that torch.save writes (data.pkl, version, byteorder...).
OTHER_ENTRIES_MAX = 16
# A central directory entry takes at least 46 bytes plus a name of a few dozen: a bound on what
# reading it costs, checked before zipfile reads it.
CENTRAL_DIRECTORY_BYTES_PER_ENTRY = 128
# zipfile's end-of-central-directory record: the index of the directory's size.
_ECD_SIZE = 5


class ArchiveRefused(ValueError):
    """The archive is not one torch.save writes; the message says why."""


def check_torch_zip(file: BinaryIO, size: int, max_entries: int) -> None:
    """Refuse the zip archive in `file` (of `size` bytes) unless every entry is stored
    uncompressed, the entries' sizes add up to no more than the file, its pickle is under
    PICKLE_MAX_BYTES and it has at most `max_entries` (besides torch.save's own few)."""
    entries_max = max_entries + OTHER_ENTRIES_MAX
    # The same reading of the end record that ZipFile makes, so that the bound holds for the
    # directory it then parses (each entry a Python object).
    end = zipfile._EndRecData(file)  # type: ignore[attr-defined]
    if end is None:
        raise ArchiveRefused("a zip archive without its central directory (a damaged file?)")
    if end[_ECD_SIZE] > entries_max * CENTRAL_DIRECTORY_BYTES_PER_ENTRY:
        raise ArchiveRefused(f"a zip archive of more than {entries_max} entries")
    try:
        with zipfile.ZipFile(file) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ArchiveRefused(f"a damaged zip archive ({exc})") from None
    if len(entries) > entries_max:
        raise ArchiveRefused(f"a zip archive of more than {entries_max} entries")
    compressed = [entry.filename for entry in entries if not _stored(entry)]
    if compressed:
        raise ArchiveRefused(
            f"a zip archive with compressed entries ({compressed[0]}...); torch.save stores "
            "its entries uncompressed"
        )
    if sum(entry.file_size for entry in entries) > size:
        raise ArchiveRefused("a zip archive whose entries claim more bytes than the file holds")
    for entry in entries:
        if entry.filename.rsplit("/", 1)[-1] == PICKLE_NAME and entry.file_size > PICKLE_MAX_BYTES:
            raise ArchiveRefused(
                f"its pickle ({entry.filename}) is over {PICKLE_MAX_BYTES // 1024**2} MiB"
            )


def _stored(entry: zipfile.ZipInfo) -> bool:
    return entry.compress_type == zipfile.ZIP_STORED and entry.compress_size == entry.file_size
