"""A fine-tuning job at submit: its parent found (404 when it is not there) and resolved, the
job's model taken from a registered parent unless it names one, and the parent's weights checked
against the network the job will build (422 naming the tensors that do not fit).

The refusals here are not stated in the request's schema: they depend on what is registered and
uploaded. Each names its field first ("init_from: ...")."""

import hashlib
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.db import session_scope
from app.errors import InvalidInput, NotFound, Unavailable, describe_validation_error
from app.jobs.config import JobConfig, JobCreate
from app.jobs.init_from import (
    AliasParent,
    ResolvedVersion,
    ResolvedWeights,
    VersionParent,
    WeightsParent,
)
from app.ml.architectures import architecture, meta_model
from app.ml.checkpoints import SavedWeights, read_saved_weights
from app.ml.torchvision_nets import RESNET_FAMILY, SMALL_INPUT_MAX_PX
from app.ml.transfer import UnsupportedHead, WeightsMismatch, check_fits, head_of
from app.models import Dataset, ModelVersion, RegisteredModel
from app.registry.aliases import alias_version
from app.registry.versions import find_model, find_version
from app.storage.store import ArtifactMissing, ArtifactStore, StoreError
from app.weights.usage import find_weights


@dataclass(frozen=True)
class Parent:
    """What a job starts from, as submit found it."""

    resolved: ResolvedVersion | ResolvedWeights  # as the job stores it
    shapes: dict[str, list[int]]  # each of its tensors' shape, by name
    arch: str | None = None  # a version's architecture; None for a weights file
    hidden_layers: list[int] | None = None  # an mlp version's widths

    def describe(self) -> str:
        resolved = self.resolved
        if isinstance(resolved, ResolvedVersion):
            return f"version {resolved.version} of {resolved.model!r}"
        return f"weights {resolved.weights}"


@dataclass(frozen=True)
class Target:
    """What the job's network is built for: its dataset's classes and inputs."""

    classes: int
    image_px: int
    in_features: int | None  # a table's columns; None for images


CIFAR10_TARGET = Target(classes=10, image_px=32, in_features=None)
# The first convolution of a ResNet, whose shape depends on the image size.
STEM = "conv1.weight"


@dataclass(frozen=True)
class ParentModelFile:
    """A version's model file, read before the submit's write transaction begins: a download
    from the store never holds the database's write lock."""

    key: str
    recorded_sha256: str | None  # as the version's row had it when the file was read
    saved: SavedWeights
    sha256: str


def read_parent_model(
    store: ArtifactStore, init_from: VersionParent | AliasParent | WeightsParent | None
) -> ParentModelFile | None:
    """The model file of the version a job would start from, read in a short read transaction
    of its own and then from the store; None for a weights file (its row holds what submit
    needs) or when there is no such version (find_parent says so)."""
    if init_from is None or isinstance(init_from, WeightsParent):
        return None
    with session_scope() as session:
        try:
            model = find_model(session, init_from.model)
            version = find_version(session, model, _version_number(session, model, init_from))
        except NotFound:
            return None
        key, recorded, named = version.model_path, version.model_sha256, _named(version, model)
    return _read_model_file(store, key, recorded, named)


def find_parent(
    session: Session,
    store: ArtifactStore,
    init_from: VersionParent | AliasParent | WeightsParent,
    read: ParentModelFile | None = None,
) -> Parent:
    """The version (an alias resolved to the version it names now) or weights file a job
    starts from; 404 when there is none. A version's model file is taken from `read` when
    that is still the version's (else, rarely, read here)."""
    try:
        if isinstance(init_from, WeightsParent):
            # Held shared until the job is committed; a deletion waits for it, then sees the job.
            row = find_weights(session, init_from.weights, share=True)
            weights = ResolvedWeights(weights=row.id, sha256=row.sha256, filename=row.filename)
            return Parent(weights, shapes=row.tensors)
        # As for a weights file: a deletion of the version waits for the job to be committed.
        model = find_model(session, init_from.model, share=True)
        version = find_version(session, model, _version_number(session, model, init_from))
    except NotFound as exc:
        raise NotFound(f"init_from: {exc.message}") from None
    if read is None or (read.key, read.recorded_sha256) != (
        version.model_path,
        version.model_sha256,
    ):
        read = _read_model_file(
            store, version.model_path, version.model_sha256, _named(version, model)
        )
    saved = read.saved
    resolved = ResolvedVersion(model=model.name, version=version.version, sha256=read.sha256)
    shapes = {name: list(tensor.shape) for name, tensor in saved.state_dict.items()}
    return Parent(resolved, shapes, arch=saved.arch, hidden_layers=saved.hidden_layers)


def _version_number(
    session: Session, model: RegisteredModel, init_from: VersionParent | AliasParent
) -> int:
    if isinstance(init_from, VersionParent):
        return init_from.version
    number = alias_version(session, model, init_from.alias)
    if number is None:
        raise NotFound(f"model {model.name!r} has no alias {init_from.alias!r}")
    return number


def _named(version: ModelVersion, model: RegisteredModel) -> str:
    return f"init_from: version {version.version} of {model.name!r}"


def _read_model_file(
    store: ArtifactStore, key: str, recorded_sha256: str | None, named: str
) -> ParentModelFile:
    try:
        with store.open(key, recorded_sha256) as file:
            data = file.read()
    except ArtifactMissing:
        raise Unavailable(f"{named}: its model file is missing ({key})") from None
    except StoreError as exc:  # damaged, refused, or the store does not answer
        raise Unavailable(f"{named}: its model file cannot be read: {exc}") from None
    try:
        saved = read_saved_weights(data)
    except Exception:
        raise Unavailable(f"{named}: its model file cannot be read ({key})") from None
    sha256 = recorded_sha256 or hashlib.sha256(data).hexdigest()
    return ParentModelFile(key, recorded_sha256, saved, sha256)


def with_parent_model(spec: JobCreate, parent: Parent) -> JobCreate:
    """The job as it will train: a registered parent's architecture (and an mlp's widths)
    unless the job names its own; 422 when it names another architecture."""
    if parent.arch is None:
        return spec
    given = spec.model_fields_set
    if "model" in given and spec.model != parent.arch:
        raise InvalidInput(
            f"init_from: {parent.describe()} is a {parent.arch}, not a {spec.model}; leave "
            "model out to train the parent's architecture"
        )
    taken: dict[str, object] = {}
    if "model" not in given:
        taken["model"] = parent.arch
    if "hidden_layers" not in given and parent.hidden_layers is not None:
        taken["hidden_layers"] = parent.hidden_layers
    if not taken:
        return spec
    try:  # validated again: the rules between options apply to the parent's model too
        return JobCreate.model_validate({**spec.model_dump(exclude_unset=True), **taken})
    except ValidationError as exc:
        raise InvalidInput(describe_validation_error(exc)) from None


def check_options(config: JobConfig) -> None:
    """422 for freeze or backbone_learning_rate where they mean nothing."""
    if config.init_from is None:
        for field in ("freeze", "backbone_learning_rate"):
            if getattr(config, field) is not None:
                raise InvalidInput(
                    f"{field}: only for a job that starts from other weights (init_from); a "
                    "job trained from scratch has no backbone to keep"
                )
    if config.freeze == "backbone" and config.backbone_learning_rate is not None:
        raise InvalidInput(
            'backbone_learning_rate: a frozen backbone (freeze "backbone") does not train'
        )


def dataset_target(session: Session, dataset: str) -> Target:
    """What a network for the (ready) dataset is built for."""
    if dataset == "cifar10":
        return CIFAR10_TARGET
    row = session.get(Dataset, dataset)
    assert row is not None and row.classes is not None
    columns = None if row.feature_columns is None else len(row.feature_columns)
    return Target(len(row.classes), row.image_size or 0, columns)


def check_parent_fits(parent: Parent, config: JobConfig, target: Target) -> None:
    """422 naming the parent's tensors that do not fit the job's network, or when its family's
    classifier head is unknown; the head itself may differ (it is then replaced)."""
    model = meta_model(
        config.model, target.classes, target.image_px, target.in_features, config.hidden_layers
    )
    size = "" if target.in_features is not None else f", {target.image_px}-pixel images"
    network = f"{config.model} for {target.classes} classes{size}"
    try:
        check_fits(parent.shapes, model, head_of(model, config.model), network=network)
    except (UnsupportedHead, WeightsMismatch) as exc:
        hint = _stem_hint(parent, config.model, list(model.state_dict()[STEM].shape))
        raise InvalidInput(f"init_from: {parent.describe()}: {exc}{hint}") from None


def _stem_hint(parent: Parent, arch: str, stem: list[int]) -> str:
    # A ResNet's first convolution depends on the image size (app/ml/torchvision_nets.py): the
    # commonest misfit, between ImageNet weights and CIFAR-sized images, is told plainly.
    if architecture(arch).family != RESNET_FAMILY or parent.shapes.get(STEM, stem) == stem:
        return ""
    return (
        f"; a ResNet's {STEM} is the 3x3 stem on images of {SMALL_INPUT_MAX_PX} pixels or "
        f"fewer and ImageNet's 7x7 stem on larger ones: weights with the 7x7 stem need a "
        f"dataset of images over {SMALL_INPUT_MAX_PX} pixels"
    )
