"""Accepting an uploaded weights file: streamed to a local file as it arrives, read without
running anything (app/ml/weight_files.py), published to the artifact store, then recorded;
nothing is left behind when it is refused.

The file is published under its key before the transaction that creates its row: a crash leaves
a row with its file, or a file no row refers to, which the sweep removes (app/sweep.py).
"""

import contextlib
import shutil
from typing import BinaryIO

from app.db import session_scope, utcnow
from app.errors import InvalidInput, Unavailable
from app.ml.weight_files import WeightsRejected, inspect_weights
from app.models import WeightsFile
from app.storage.store import ArtifactStore, StoreError
from app.weights.files import weights_key, weights_prefix
from app.weights.ids import new_weights_id

COPY_CHUNK_BYTES = 1024 * 1024
FILENAME_MAX_CHARS = 255


def accept_weights(store: ArtifactStore, filename: str, body: BinaryIO) -> WeightsFile:
    """Store the upload, check that it is weights and record it; 422 with the reason if not."""
    weights_id = new_weights_id()
    # Named for the store's format only once it is known: staged under a provisional key.
    staged = store.staging_path(weights_key(weights_id, "pytorch"))
    published = None
    try:
        with staged.open("wb") as out:
            shutil.copyfileobj(body, out, COPY_CHUNK_BYTES)
        if staged.stat().st_size == 0:
            raise InvalidInput("file: the upload is empty")
        try:
            summary = inspect_weights(staged)
        except WeightsRejected as exc:
            raise InvalidInput(str(exc)) from None
        try:
            published = store.publish(staged, weights_key(weights_id, summary.format))
        except StoreError as exc:
            raise Unavailable(f"file: it could not be stored: {exc}") from None
        with session_scope(write=True) as session:
            row = WeightsFile(
                id=weights_id,
                filename=filename[:FILENAME_MAX_CHARS],
                format=summary.format,
                size_bytes=published.size,
                sha256=published.sha256,
                tensor_count=len(summary.shapes),
                tensors=summary.shapes,
                parameters=summary.parameters,
                created_at=utcnow(),
            )
            session.add(row)
        return row
    except BaseException:
        if published is not None:
            with contextlib.suppress(StoreError):  # else the sweep removes it
                store.delete(published.key)
        raise
    finally:
        staged.unlink(missing_ok=True)
        if published is None:  # refused: not even an empty folder stays
            store.remove_staged(weights_prefix(weights_id))
