"""Weights files uploaded before they lived in the artifact store were kept under
TRAINSERVE_DATA_DIR/weights/<id>/; the API moves them into the store at its start (copied into
the local folder or uploaded to a bucket, file by file, each whole or not at all), so that their
rows work again without a hand."""

import logging
import shutil
from functools import partial
from pathlib import Path

from app.storage.local import LocalFolder
from app.storage.store import ArtifactStore, StoreError
from app.weights.files import WEIGHTS_FOLDER, weights_prefix

log = logging.getLogger("trainserve.api")


def move_old_weights(data_dir: Path, store: ArtifactStore) -> int:
    """Move each DATA_DIR/weights/<id>/ into the store, where it is not already; how many.
    A failure is said in the log and the folder left for the next start."""
    old = data_dir / WEIGHTS_FOLDER
    if not old.is_dir():
        return 0
    moved = 0
    for folder in sorted(old.iterdir()):
        try:
            if _move(folder, store):
                moved += 1
        except (OSError, StoreError, ValueError) as exc:
            log.warning(
                "weights %s were not moved into the %s: %s", folder.name, store.description, exc
            )
    if moved:
        log.info("moved %d weights file(s) from %s into the %s", moved, old, store.description)
    return moved


def _move(folder: Path, store: ArtifactStore) -> bool:
    prefix = weights_prefix(folder.name)  # the store refuses (ValueError) a name no key takes
    if isinstance(store, LocalFolder) and store.path(prefix).exists():
        return False  # moved by an earlier start, or by another API process now
    for path in sorted(folder.iterdir()):
        if path.is_file():
            # Copied and published file by file, each whole or not at all: a start cut short
            # leaves no half-copied file, and the next one copies it again.
            store.publish_new(f"{prefix}/{path.name}", partial(shutil.copyfile, path))
    shutil.rmtree(folder)
    return True
