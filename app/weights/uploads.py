"""Accepting an uploaded weights file: streamed to a local file as it arrives, read without
running anything (app/ml/weight_files.py), published to the artifact store, then recorded;
nothing is left behind when it is refused (app/storage/uploads.py).
"""

from typing import BinaryIO

from app.db import session_scope, utcnow
from app.errors import InvalidInput
from app.ml.weight_files import WeightsRejected, inspect_weights
from app.models import WeightsFile
from app.storage.store import ArtifactStore
from app.storage.uploads import staged_upload
from app.weights.files import weights_key, weights_prefix
from app.weights.ids import new_weights_id

FILENAME_MAX_CHARS = 255


def accept_weights(store: ArtifactStore, filename: str, body: BinaryIO) -> WeightsFile:
    """Store the upload, check that it is weights and record it; 422 with the reason if not."""
    weights_id = new_weights_id()
    # Named for the store's format only once it is known: staged under a provisional key.
    provisional = weights_key(weights_id, "pytorch")
    with staged_upload(store, body, provisional, weights_prefix(weights_id)) as staged:
        try:
            summary = inspect_weights(staged.path)
        except WeightsRejected as exc:
            raise InvalidInput(str(exc)) from None
        published = staged.publish(weights_key(weights_id, summary.format))
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
