"""Weights files uploaded before they lived in the artifact store were kept under
TRAINSERVE_DATA_DIR/weights/<id>/; the API moves them into the store at its start (a rename into
the local folder, an upload to a bucket), so that their rows work again without a hand."""

import logging
import shutil
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
        except (OSError, StoreError) as exc:
            log.warning(
                "weights %s were not moved into the %s: %s", folder.name, store.description, exc
            )
    if moved:
        log.info("moved %d weights file(s) from %s into the %s", moved, old, store.description)
    return moved


def _move(folder: Path, store: ArtifactStore) -> bool:
    files = [path for path in sorted(folder.iterdir()) if path.is_file()]
    prefix = weights_prefix(folder.name)
    if isinstance(store, LocalFolder):
        target = store.path(prefix)
        if target.exists():
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(folder, target)
        return True
    for path in files:
        store.publish(path, f"{prefix}/{path.name}")
    shutil.rmtree(folder)
    return True
