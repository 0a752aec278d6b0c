"""Exports are made once per version and kept: a version never changes, nor does its number."""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

EXPORTS_FOLDER = "exports"


def export_folder(artifacts_dir: Path, model: str, version: int) -> Path:
    """Where a version's exports are kept."""
    return artifacts_dir / EXPORTS_FOLDER / model / f"v{version}"


def export_path(artifacts_dir: Path, model: str, version: int, extension: str) -> Path:
    return export_folder(artifacts_dir, model, version) / f"{model}-v{version}.{extension}"


def kept(path: Path, make: Callable[[], bytes]) -> bytes:
    """The file at `path`, made by `make` and written atomically the first time."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    data = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        # Two server processes may make the same export at once: the last rename wins, and
        # both files are whole.
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return data
