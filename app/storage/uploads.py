"""An upload received into the artifact store: copied in chunks from the temporary file Starlette
spooled the request's body to (never whole in memory: a 1 GiB archive costs the process a
chunk) to a staged file, checked there by the caller, then published; nothing is left behind
when it is refused or fails.

The file is published under its key before the transaction that creates its row: a crash leaves
a row with its file, or a file no row refers to, which the sweep removes (app/sweep.py).
"""

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from app.errors import InvalidInput, Unavailable
from app.storage.store import ArtifactStore, Published, StoreError

COPY_CHUNK_BYTES = 1024 * 1024


class StagedUpload:
    """The upload on this machine (`path`), and what was published of it."""

    def __init__(self, store: ArtifactStore, path: Path) -> None:
        self.store, self.path = store, path
        self.published: Published | None = None

    def size(self) -> int:
        return self.path.stat().st_size

    def publish(self, key: str) -> Published:
        """Store it under `key`: a multipart upload to a bucket above its threshold (read from
        disk part by part), a rename into the local folder; 503 when the store fails."""
        try:
            self.published = self.store.publish(self.path, key)
        except StoreError as exc:
            raise Unavailable(f"file: it could not be stored: {exc}") from None
        return self.published


@contextlib.contextmanager
def staged_upload(
    store: ArtifactStore, body: BinaryIO, staging_key: str, prefix: str
) -> Iterator[StagedUpload]:
    """`body` staged for `staging_key` (422 when empty); on any failure inside, what was
    published is deleted (else the sweep removes it); at the end, the staged file, and when
    nothing was published, any folder made under `prefix` for it."""
    staged = StagedUpload(store, store.staging_path(staging_key))
    try:
        with staged.path.open("wb") as out:
            shutil.copyfileobj(body, out, COPY_CHUNK_BYTES)
        if staged.size() == 0:
            raise InvalidInput("file: the upload is empty")
        yield staged
    except BaseException:
        if staged.published is not None:
            with contextlib.suppress(StoreError):  # else the sweep removes it
                store.delete(staged.published.key)
        raise
    finally:
        staged.path.unlink(missing_ok=True)
        if staged.published is None:  # refused: not even an empty folder stays
            store.remove_staged(prefix)
