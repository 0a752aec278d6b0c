"""torchvision's image-classification architectures, by their torchvision names: which image
sizes each takes, and a freshly initialised one built for a dataset's classes and image size.

torchvision is imported on first use only: it adds about a second and 150 MB to a process that
already has torch, which the API pays only once a job, a listing or a model needs it.
"""

import re
import warnings
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

from torch import nn

# Up to this size the ResNet family takes CIFAR's stem: a 7x7 stride-2 convolution and a max-pool
# would leave a 32-pixel image 8 pixels wide before the first block.
SMALL_INPUT_MAX_PX = 64
RESNET_FAMILY = "resnet"  # also resnext* and wide_resnet*: torchvision builds them all there


@dataclass(frozen=True)
class InputSizes:
    """The square image sizes a network takes: at least `min_px`, and a multiple of
    `multiple_of_px`."""

    min_px: int
    multiple_of_px: int = 1

    def takes(self, size_px: int) -> bool:
        return size_px >= self.min_px and size_px % self.multiple_of_px == 0

    def describe(self) -> str:
        if self.multiple_of_px == 1:
            return f"images of at least {self.min_px} pixels"
        if self.multiple_of_px == self.min_px:
            return f"images whose size is a multiple of {self.min_px} pixels"
        return (
            f"images of at least {self.min_px} pixels whose size is a multiple of "
            f"{self.multiple_of_px}"
        )


# The smallest input each family takes, from how it downsamples (each verified by a forward pass
# at that size and one pixel less in tests/ml/test_torchvision_nets.py). Families whose stages
# keep at least one pixel through padding and end in an adaptive pool take any size.
ANY_SIZE = InputSizes(1)
FAMILY_SIZES: dict[str, InputSizes] = {
    # 11x11 stride-4 convolution, then three 3x3 stride-2 max-pools without padding.
    "alexnet": InputSizes(63),
    # A 4x4 stride-4 stem, then three 2x2 stride-2 downsamplings that need 2 pixels each.
    "convnext": InputSizes(32),
    # A 7x7 stride-2 stem and a stride-2 max-pool, then three 2x2 average pools.
    "densenet": InputSizes(29),
    "efficientnet": ANY_SIZE,
    # Its 7x7 stride-2 stem and four stride-2 max-pools leave the last pool's 2x2 window too big
    # below 15 pixels.
    "googlenet": InputSizes(15),
    # Its stem's unpadded 3x3 convolutions and pools: torchvision documents 75 as its minimum.
    "inception": InputSizes(75),
    # Its attention splits each stage's map (1/4 to 1/32 of the image) into 7x7 windows.
    "maxvit": InputSizes(224, 224),
    "mnasnet": ANY_SIZE,
    "mobilenetv2": ANY_SIZE,
    "mobilenetv3": ANY_SIZE,
    "regnet": ANY_SIZE,
    # With CIFAR's stem up to SMALL_INPUT_MAX_PX, ImageNet's above: both end in an adaptive pool.
    RESNET_FAMILY: ANY_SIZE,
    "shufflenetv2": ANY_SIZE,
    # 1_1's 3x3 stride-2 stem and three unpadded 3x3 stride-2 max-pools; 1_0's stem is 7x7.
    "squeezenet": InputSizes(17),
    # A 4x4 patch embedding; its windows are padded to fit any map.
    "swin_transformer": InputSizes(4),
    # Five 2x2 max-pools.
    "vgg": InputSizes(32),
    # Built for the dataset's size: the image must split into whole patches (see sizes_of).
    "vision_transformer": InputSizes(1),
}
MODEL_SIZES: dict[str, InputSizes] = {"squeezenet1_0": InputSizes(21)}
# torchvision names a vision transformer vit_<width>_<patch size>.
VIT_PATCH = re.compile(r"^vit_[a-z]+_(\d+)$")


def _torchvision_models() -> ModuleType:
    import torchvision.models  # here, not at the top: see the docstring

    return torchvision.models


def family_of(name: str) -> str:
    """The torchvision module that builds `name` ("resnet" for resnet18, resnext50_32x4d...)."""
    builder = _torchvision_models().get_model_builder(name)
    return str(builder.__module__).rsplit(".", 1)[-1]


@cache
def torchvision_names() -> tuple[str, ...]:
    """The classification architectures of the installed torchvision whose input sizes we know;
    a family added by a later torchvision is left out until FAMILY_SIZES says what it takes."""
    models = _torchvision_models()
    names = models.list_models(module=models)
    return tuple(sorted(name for name in names if family_of(name) in FAMILY_SIZES))


def sizes_of(name: str) -> InputSizes:
    """The image sizes the torchvision architecture `name` takes."""
    patch = VIT_PATCH.match(name)
    if patch is not None:
        return InputSizes(int(patch[1]), int(patch[1]))
    return MODEL_SIZES.get(name) or FAMILY_SIZES[family_of(name)]


def _builder_options(family: str, image_size: int) -> dict[str, Any]:
    if family in ("googlenet", "inception"):
        # One output, as the loop and serving expect: no auxiliary classifiers. init_weights
        # says outright what torchvision otherwise warns it will stop defaulting to.
        return {"aux_logits": False, "init_weights": True}
    if family == "vision_transformer":
        return {"image_size": image_size}
    if family == "maxvit":
        return {"input_size": (image_size, image_size)}
    return {}


def use_cifar_stem(model: nn.Module) -> None:
    """Swap a torchvision ResNet's ImageNet stem for CIFAR's: a 3x3 stride-1 convolution and no
    max-pool, initialised as torchvision initialises its convolutions."""
    old = model.conv1
    assert isinstance(old, nn.Conv2d)
    conv = nn.Conv2d(3, old.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    model.conv1 = conv
    model.maxpool = nn.Identity()


def build_torchvision(
    name: str, num_classes: int, image_size: int, *, check_size: bool = True
) -> nn.Module:
    """A freshly initialised torchvision `name` for `num_classes` classes and square images of
    `image_size` pixels; never with pretrained weights (nothing is downloaded). `check_size=False`
    builds it for a size it does not take, to show that it fails there."""
    sizes = sizes_of(name)
    if check_size and not sizes.takes(image_size):
        raise ValueError(f"{name} takes {sizes.describe()}, not {image_size}")
    family = family_of(name)
    with warnings.catch_warnings():
        # Some builders warn about how their default initialisation may change one day.
        warnings.simplefilter("ignore", FutureWarning)
        model: nn.Module = _torchvision_models().get_model(
            name, weights=None, num_classes=num_classes, **_builder_options(family, image_size)
        )
    if family == RESNET_FAMILY and image_size <= SMALL_INPUT_MAX_PX:
        use_cifar_stem(model)
    return model
