"""The weights a fine-tuning job starts from, read by its worker before the first step: the
parent's file found, checked against the sha256 the job stored at submit (as serving checks a
model file), and read. A parent that is gone or changed fails the job, saying which."""

import hashlib
from pathlib import Path
from typing import cast

from sqlalchemy import select

from app.db import session_scope
from app.jobs.init_from import ResolvedVersion, ResolvedWeights
from app.ml.checkpoints import read_saved_weights
from app.ml.transfer import InitialWeights
from app.ml.weight_files import WeightsFormat, read_state_dict
from app.models import ModelVersion, RegisteredModel, WeightsFile
from app.settings import Settings
from app.weights.files import weights_path


class ParentUnavailable(Exception):
    """The parent's file is gone, changed or unreadable; the message says which, for the user."""


def load_parent(settings: Settings, parent: ResolvedVersion | ResolvedWeights) -> InitialWeights:
    """The weights of the job's parent, checked against the sha256 it stored at submit."""
    fmt: WeightsFormat | None = None  # a version's file is a model file
    if isinstance(parent, ResolvedVersion):
        source = f"version {parent.version} of {parent.model!r}"
        path = _version_file(settings.artifacts_dir, parent)
    else:
        source = f"weights {parent.weights} ({parent.filename})"
        path, fmt = _weights_file(settings.data_dir, parent)
    named = f"init_from: {source}"
    if path is None:
        raise ParentUnavailable(f"{named} was deleted after the job was submitted")
    try:
        data = path.read_bytes()
    except OSError:
        raise ParentUnavailable(f"{named}: its file is missing ({path})") from None
    # Checked and read from the same bytes: nothing can change between the two.
    if hashlib.sha256(data).hexdigest() != parent.sha256:
        raise ParentUnavailable(
            f"{named}: its file is damaged or was replaced: its sha256 is not the one recorded "
            f"when the job was submitted ({path})"
        )
    try:
        if fmt is None:
            saved = read_saved_weights(data)
            return InitialWeights(saved.state_dict, saved.classes, source)
        return InitialWeights(read_state_dict(data, fmt), None, source)
    except Exception as exc:  # a file that matches its sha256 was read once already: unlikely
        raise ParentUnavailable(f"{named}: its file cannot be read ({exc})") from None


def _version_file(artifacts_dir: Path, parent: ResolvedVersion) -> Path | None:
    with session_scope() as session:
        model_path = session.scalar(
            select(ModelVersion.model_path)
            .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
            .where(RegisteredModel.name == parent.model, ModelVersion.version == parent.version)
        )
    return None if model_path is None else artifacts_dir / model_path


def _weights_file(
    data_dir: Path, parent: ResolvedWeights
) -> tuple[Path | None, WeightsFormat | None]:
    with session_scope() as session:
        row = session.get(WeightsFile, parent.weights)
        if row is None:
            return None, None
        fmt = cast(WeightsFormat, row.format)
    return weights_path(data_dir, parent.weights, fmt), fmt
