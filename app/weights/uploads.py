"""Accepting an uploaded weights file: streamed to disk and hashed as it arrives, read without
running anything (app/ml/weight_files.py), then recorded; nothing is left on disk when it is
refused.

As with datasets, the file is written and checked under incoming/ and moved into weights/<id>/
in the transaction that creates its row: a crash leaves a row with its file, or a file no row
refers to, which the sweep removes (app/sweep.py).
"""

import hashlib
import os
import shutil
from pathlib import Path
from typing import BinaryIO

from app.db import session_scope, utcnow
from app.errors import InvalidInput
from app.ml.weight_files import WeightsRejected, inspect_weights
from app.models import WeightsFile
from app.weights.files import incoming_weights_path, weights_folder, weights_path
from app.weights.ids import new_weights_id

COPY_CHUNK_BYTES = 1024 * 1024
FILENAME_MAX_CHARS = 255


def accept_weights(data_dir: Path, filename: str, body: BinaryIO) -> WeightsFile:
    """Store the upload, check that it is weights and record it; 422 with the reason if not."""
    weights_id = new_weights_id()
    incoming = incoming_weights_path(data_dir, weights_id)
    incoming.parent.mkdir(parents=True, exist_ok=True)
    try:
        digest = hashlib.sha256()
        with incoming.open("wb") as out:
            while chunk := body.read(COPY_CHUNK_BYTES):
                digest.update(chunk)
                out.write(chunk)
        size = incoming.stat().st_size
        if size == 0:
            raise InvalidInput("file: the upload is empty")
        try:
            summary = inspect_weights(incoming)
        except WeightsRejected as exc:
            raise InvalidInput(str(exc)) from None
        with session_scope(write=True) as session:
            row = WeightsFile(
                id=weights_id,
                filename=filename[:FILENAME_MAX_CHARS],
                format=summary.format,
                size_bytes=size,
                sha256=digest.hexdigest(),
                tensor_count=len(summary.shapes),
                tensors=summary.shapes,
                parameters=summary.parameters,
                created_at=utcnow(),
            )
            session.add(row)
            session.flush()
            stored = weights_path(data_dir, weights_id, summary.format)
            stored.parent.mkdir(parents=True, exist_ok=True)
            os.replace(incoming, stored)
        return row
    except BaseException:
        incoming.unlink(missing_ok=True)
        shutil.rmtree(weights_folder(data_dir, weights_id), ignore_errors=True)
        raise
