"""Exports are made once per version and kept in the artifact store: a version never changes, nor
does its number."""

import logging
from collections.abc import Callable

from app.storage.store import ArtifactDamaged, ArtifactMissing, ArtifactStore

log = logging.getLogger("trainserve.api")

EXPORTS_FOLDER = "exports"


def export_prefix(model: str, version: int) -> str:
    """Where a version's exports are kept."""
    return f"{EXPORTS_FOLDER}/{model}/v{version}"


def export_key(model: str, version: int, extension: str) -> str:
    return f"{export_prefix(model, version)}/{model}-v{version}.{extension}"


def kept(store: ArtifactStore, key: str, make: Callable[[], bytes]) -> bytes:
    """The export under `key`, made by `make` and published the first time (or again, when the
    kept one is damaged). Two servers may make the same export at once: the last publication
    wins, and both are whole."""
    try:
        with store.open(key, None) as file:
            return file.read()
    except ArtifactMissing:
        pass
    except ArtifactDamaged as exc:
        log.warning("%s; made again", exc)
    data = make()
    store.publish_bytes(key, data)
    return data
