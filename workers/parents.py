"""The weights a fine-tuning job starts from, read by its worker before the first step: the
parent's file fetched from the artifact store, checked against the sha256 the job stored at
submit (as serving checks a model file), and read. A parent that is gone or changed fails the
job, saying which; a store that does not answer is an outage the worker waits through."""

from typing import cast

from sqlalchemy import select

from app.db import session_scope
from app.jobs.init_from import ResolvedVersion, ResolvedWeights
from app.ml.checkpoints import read_saved_weights
from app.ml.transfer import InitialWeights
from app.ml.weight_files import WeightsFormat, read_state_dict
from app.models import ModelVersion, RegisteredModel, WeightsFile
from app.storage.store import ArtifactDamaged, ArtifactMissing, ArtifactStore
from app.weights.files import weights_key


class ParentUnavailable(Exception):
    """The parent's file is gone, changed or unreadable; the message says which, for the user."""


def load_parent(store: ArtifactStore, parent: ResolvedVersion | ResolvedWeights) -> InitialWeights:
    """The weights of the job's parent, checked against the sha256 it stored at submit."""
    fmt: WeightsFormat | None = None  # a version's file is a model file
    if isinstance(parent, ResolvedVersion):
        source = f"version {parent.version} of {parent.model!r}"
        key = _version_key(parent)
    else:
        source = f"weights {parent.weights} ({parent.filename})"
        key, fmt = _weights_key(parent)
    named = f"init_from: {source}"
    if key is None:
        raise ParentUnavailable(f"{named} was deleted after the job was submitted")
    try:
        # Checked and read from the same open file: nothing can change between the two.
        with store.open(key, parent.sha256) as file:
            data = file.read()
    except ArtifactMissing:
        raise ParentUnavailable(f"{named}: its file is missing ({key})") from None
    except ArtifactDamaged:
        raise ParentUnavailable(
            f"{named}: its file is damaged or was replaced: its sha256 is not the one recorded "
            f"when the job was submitted ({key})"
        ) from None
    try:
        if fmt is None:
            saved = read_saved_weights(data)
            return InitialWeights(saved.state_dict, saved.classes, source)
        return InitialWeights(read_state_dict(data, fmt), None, source)
    except Exception as exc:  # a file that matches its sha256 was read once already: unlikely
        raise ParentUnavailable(f"{named}: its file cannot be read ({exc})") from None


def _version_key(parent: ResolvedVersion) -> str | None:
    with session_scope() as session:
        return session.scalar(
            select(ModelVersion.model_path)
            .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
            .where(RegisteredModel.name == parent.model, ModelVersion.version == parent.version)
        )


def _weights_key(parent: ResolvedWeights) -> tuple[str | None, WeightsFormat | None]:
    with session_scope() as session:
        row = session.get(WeightsFile, parent.weights)
        if row is None:
            return None, None
        fmt = cast(WeightsFormat, row.format)
    return weights_key(parent.weights, fmt), fmt
