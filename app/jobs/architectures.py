"""Architectures as jobs see them: the list GET /architectures gives, and whether a job's
architecture can train on its dataset (the image sizes it takes, and the two images per process
that batch norm needs in a batch).

These refusals are checked at submit, not stated in the request's schema: they depend on the
installed torchvision, and the schema's option rules are already as many as schema-driven
testing tools can expand."""

from typing import Literal

from pydantic import BaseModel, Field

from app.errors import InvalidInput
from app.jobs.config import JobConfig
from app.ml.architectures import REFERENCE_CLASSES, Architecture, architecture, architectures
from app.ml.nets import BATCH_NORM_MIN_IMAGES


class ArchitectureOut(BaseModel):
    name: str = Field(description="What a job gives as `model`.")
    family: str = Field(
        description='torchvision\'s module for its networks ("resnet" also builds resnext and '
        'wide_resnet); "tutorial", "fast" and "mlp" for ours.'
    )
    input: Literal["images", "tables"]
    parameters: int | None = Field(
        description=f"Trainable parameters for {REFERENCE_CLASSES} classes, as built for "
        "`parameters_image_size`; null for the mlp, whose size depends on the table."
    )
    parameters_image_size: int | None = Field(
        description="The image size the count is for: 32 (CIFAR-10's) where it is taken, else "
        "the smallest size above it that is. It matters for the ResNet family (CIFAR's stem up "
        "to 64 pixels) and the vision transformers (a position per patch)."
    )
    min_image_size: int | None = Field(description="The smallest image size (pixels) it takes.")
    image_size_multiple_of: int | None = Field(
        description="The image size must be a multiple of this (1: any size from the minimum)."
    )
    batch_norm: bool = Field(
        description=f"Trains with batch norm: a batch must give each process at least "
        f"{BATCH_NORM_MIN_IMAGES} images."
    )


class ArchitectureList(BaseModel):
    items: list[ArchitectureOut] = Field(description="Ours first, then torchvision's by name.")
    total: int


def _view(arch: Architecture) -> ArchitectureOut:
    sizes = arch.sizes
    return ArchitectureOut(
        name=arch.name,
        family=arch.family,
        input=arch.input,
        parameters=arch.parameters,
        parameters_image_size=arch.parameters_image_px,
        min_image_size=None if sizes is None else sizes.min_px,
        image_size_multiple_of=None if sizes is None else sizes.multiple_of_px,
        batch_norm=arch.batch_norm,
    )


def architecture_list() -> ArchitectureList:
    """Every architecture a job may name."""
    items = [_view(arch) for arch in architectures()]
    return ArchitectureList(items=items, total=len(items))


def check_fits(config: JobConfig, dataset: str, image_px: int) -> None:
    """422 when `config.model` cannot take the dataset's images of `image_px` pixels, or trains
    with batch norm on batches that would leave a process a single image."""
    arch = architecture(config.model)
    if arch.sizes is not None and not arch.sizes.takes(image_px):
        raise InvalidInput(
            f"model: {config.model} takes {arch.sizes.describe()}; dataset {dataset} has "
            f"{image_px}x{image_px} images"
        )
    batch_size, processes = config.batch_size, config.processes
    if (
        arch.batch_norm
        and batch_size is not None
        and batch_size < BATCH_NORM_MIN_IMAGES * processes
    ):
        per = "" if processes == 1 else f" per process ({processes} processes)"
        raise InvalidInput(
            f"batch_size: {config.model} trains with batch norm, which needs at least "
            f"{BATCH_NORM_MIN_IMAGES} images{per} in a batch; batch_size {batch_size} is too small"
        )
