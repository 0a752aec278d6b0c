"""Every architecture a job may name, with what it takes as input, its size in parameters and
whether it trains with batch norm.

The sizes come from building each network on the meta device, where weights have a shape and no
memory: all of torchvision's take a few seconds that way, where real ones would take minutes and
gigabytes (regnet_y_128gf alone has 644 million parameters).
"""

from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from app.ml.fast_cnn import FAST_CNN_MIN_PX
from app.ml.nets import ARCHITECTURES, TUTORIAL_CNN_MIN_PX, build_model, uses_batch_norm
from app.ml.torchvision_nets import InputSizes, family_of, sizes_of, torchvision_names

# Parameter counts are for this many classes (CIFAR-10's) ...
REFERENCE_CLASSES = 10
# ... and images of this size where the architecture takes them (CIFAR-10's), else the
# smallest size above it that it does.
REFERENCE_IMAGE_PX = 32


# Our image networks' families and input sizes (torchvision's come from app/ml/torchvision_nets).
OUR_IMAGE_NETWORKS = {
    "tutorial_cnn": ("tutorial", InputSizes(TUTORIAL_CNN_MIN_PX)),
    "fast_cnn": ("fast", InputSizes(FAST_CNN_MIN_PX)),
}


@dataclass(frozen=True)
class Architecture:
    name: str
    family: str  # torchvision's module for its networks ("resnet"); ours: "tutorial", "fast", "mlp"
    input: Literal["images", "tables"]
    sizes: InputSizes | None  # the image sizes it takes; None for tables
    parameters: int | None  # for REFERENCE_CLASSES; None where it depends on a table's columns
    parameters_image_px: int | None  # the image size `parameters` is for
    batch_norm: bool


def is_known(name: str) -> bool:
    """Whether a job may name `name` as its model (torchvision is imported only for a name that
    is not one of ours)."""
    return name in ARCHITECTURES or name in torchvision_names()


def known_names() -> list[str]:
    """Every architecture's name: ours first, then torchvision's in alphabetical order."""
    return [*ARCHITECTURES, *torchvision_names()]


# Constructors that make a tensor of a shape, with no values worth keeping: on the meta device.
_SHAPE_ONLY = frozenset(
    {torch.empty, torch.empty_strided, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn}
)


class _WeightsOnMeta(TorchFunctionMode):
    """Tensors made only to be a shape (weights, buffers) go to the meta device; tensors made from
    values (arange, tensor) stay real, since some builders compute layer widths from them (RegNet
    does). Like every torch function mode, it acts in the entering thread only."""

    def __torch_function__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = dict(kwargs or {})
        if func in _SHAPE_ONLY and kwargs.get("device") is None:
            kwargs["device"] = "meta"
        return func(*args, **kwargs)


def reference_size(sizes: InputSizes) -> int:
    """REFERENCE_IMAGE_PX if the architecture takes it, else the next size up that it does."""
    size = max(REFERENCE_IMAGE_PX, sizes.min_px)
    step = sizes.multiple_of_px
    return -(-size // step) * step


def meta_model(
    name: str,
    num_classes: int,
    image_size: int = REFERENCE_IMAGE_PX,
    in_features: int | None = None,
    hidden_layers: list[int] | None = None,
) -> nn.Module:
    """`name` as build_model builds it, with its weights on the meta device: every tensor's
    name and shape, without the memory or the time real weights take."""
    with _WeightsOnMeta():
        return build_model(name, num_classes, image_size, in_features, hidden_layers)


@cache
def architecture(name: str) -> Architecture:
    """The architecture `name` (one of known_names())."""
    if name == "mlp":
        return Architecture(name, "mlp", "tables", None, None, None, batch_norm=False)
    if name in ARCHITECTURES:
        family, sizes = OUR_IMAGE_NETWORKS[name]
    else:
        family, sizes = family_of(name), sizes_of(name)
    size = reference_size(sizes)
    model = meta_model(name, num_classes=REFERENCE_CLASSES, image_size=size)
    # Trainable ones: fast_cnn's whitening weights are set from the data, never trained.
    parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return Architecture(name, family, "images", sizes, parameters, size, uses_batch_norm(model))


def architectures() -> list[Architecture]:
    """Every architecture, in known_names() order (the first call counts their parameters)."""
    return [architecture(name) for name in known_names()]
