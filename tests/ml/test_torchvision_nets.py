"""torchvision's architectures: the names offered, the image sizes each family really takes (a
forward pass at the smallest and a failure one pixel below), CIFAR's stem for small ResNets, and
the parameter counts GET /architectures gives."""

from pathlib import Path

import pytest
import torch
import torchvision.models
from torch import nn
from torchvision.models import ResNet

from app.ml.architectures import architecture, architectures, known_names
from app.ml.checkpoints import load_model, save_model
from app.ml.nets import TUTORIAL_CNN_MIN_PX, build_model
from app.ml.torchvision_nets import (
    FAMILY_SIZES,
    SMALL_INPUT_MAX_PX,
    InputSizes,
    build_torchvision,
    family_of,
    sizes_of,
    torchvision_names,
)

# One or two of each family, the cheapest to build, with the smallest image size it takes (1:
# any); each family's networks share the layers that set that size.
SMALLEST = [
    ("alexnet", 63),
    ("convnext_tiny", 32),
    ("densenet121", 29),
    ("efficientnet_b0", 1),
    ("efficientnet_v2_s", 1),
    ("googlenet", 15),
    ("inception_v3", 75),
    ("mnasnet0_5", 1),
    ("mobilenet_v2", 1),
    ("mobilenet_v3_small", 1),
    ("regnet_x_400mf", 1),
    ("resnet18", 1),
    ("resnext50_32x4d", 1),
    ("shufflenet_v2_x0_5", 1),
    ("squeezenet1_0", 21),
    ("squeezenet1_1", 17),
    ("swin_t", 4),
    ("swin_v2_t", 4),
    ("vgg11", 32),
    ("vit_b_32", 32),
]
# Where torchvision's own weights metadata ("min_size") says otherwise, and why: it describes the
# pretrained weights, which we never load. A vision transformer is built for the dataset's size
# (its position embeddings have one entry a patch); Swin pads its windows to fit any map; and
# EfficientNet-V2 ends in an adaptive pool as V1 does, whose metadata says 1.
DIFFERS_FROM_TORCHVISION_METADATA = {"swin_transformer", "vision_transformer"}
EFFICIENTNET_V2 = {"efficientnet_v2_s", "efficientnet_v2_m", "efficientnet_v2_l"}


def forward(model: nn.Module, size: int) -> torch.Tensor:
    """Two images through the model as training runs it (batch norm needs two)."""
    with torch.no_grad():
        return model.train()(torch.randn(2, 3, size, size))


def test_every_classifier_of_the_installed_torchvision_is_offered() -> None:
    # A family a later torchvision adds fails here until FAMILY_SIZES says what it takes.
    listed = torchvision.models.list_models(module=torchvision.models)
    assert sorted(listed) == list(torchvision_names())
    assert known_names()[:3] == ["tutorial_cnn", "fast_cnn", "mlp"]
    assert {family_of(name) for name, _ in SMALLEST} == set(FAMILY_SIZES) - {"maxvit"}


@pytest.mark.parametrize(("name", "smallest"), SMALLEST)
def test_the_smallest_size_trains_and_one_pixel_less_fails(name: str, smallest: int) -> None:
    sizes = sizes_of(name)
    assert (sizes.min_px, sizes.takes(smallest), sizes.takes(smallest - 1)) == (
        smallest,
        True,
        False,
    )
    model = build_torchvision(name, 10, smallest)
    assert forward(model, smallest).shape == (2, 10)
    if smallest > 1:  # a vision transformer is built for its size: see below
        with pytest.raises((RuntimeError, AssertionError)):
            forward(model, smallest - 1)


def test_maxvit_takes_only_multiples_of_224() -> None:
    # Its attention splits each stage's map (a quarter to a thirty-second of the image) into
    # 7x7 windows; 256 (the largest upload) does not divide.
    assert sizes_of("maxvit_t").describe() == "images whose size is a multiple of 224 pixels"
    assert forward(build_torchvision("maxvit_t", 10, 224), 224).shape == (2, 10)
    for size in (192, 256):
        with pytest.raises(ValueError, match="not divisible by partition size 7"):
            build_torchvision("maxvit_t", 10, size, check_size=False)


def test_a_vision_transformer_takes_whole_patches() -> None:
    assert sizes_of("vit_b_16").describe() == "images whose size is a multiple of 16 pixels"
    assert forward(build_torchvision("vit_b_32", 10, 64), 64).shape == (2, 10)
    with pytest.raises(AssertionError, match="indivisible by patch size"):
        build_torchvision("vit_b_32", 10, 48, check_size=False)
    for name in torchvision_names():
        if family_of(name) == "vision_transformer":  # the name's patch size is the model's
            assert architecture(name).sizes == sizes_of(name)
            assert sizes_of(name).multiple_of_px == int(name.rsplit("_", 1)[1])


def test_the_sizes_agree_with_torchvision_metadata_but_where_we_build_differently() -> None:
    for name in torchvision_names():
        documented = {w.meta["min_size"][0] for w in torchvision.models.get_model_weights(name)}
        if family_of(name) in DIFFERS_FROM_TORCHVISION_METADATA or name in EFFICIENTNET_V2:
            continue
        assert documented == {sizes_of(name).min_px}, name


def test_a_size_outside_the_range_is_refused_by_name() -> None:
    with pytest.raises(
        ValueError, match=r"^inception_v3 takes images of at least 75 pixels, not 32"
    ):
        build_model("inception_v3", 10, image_size=32)
    with pytest.raises(ValueError, match=r"^unknown model 'resnet19'; GET /architectures"):
        build_model("resnet19", 10)


def resnet(name: str, image_size: int) -> ResNet:
    model = build_model(name, 10, image_size=image_size)
    assert isinstance(model, ResNet)
    return model


@pytest.mark.parametrize("name", ["resnet18", "resnext50_32x4d"])
def test_small_images_get_the_cifar_stem_and_large_ones_imagenets(name: str) -> None:
    small = resnet(name, SMALL_INPUT_MAX_PX)
    assert (small.conv1.kernel_size, small.conv1.stride, small.conv1.padding) == (
        (3, 3),
        (1, 1),
        (1, 1),
    )
    assert isinstance(small.maxpool, nn.Identity)
    large = resnet(name, SMALL_INPUT_MAX_PX + 1)
    assert (large.conv1.kernel_size, large.conv1.stride) == ((7, 7), (2, 2))
    assert isinstance(large.maxpool, nn.MaxPool2d)
    # The first block sees the whole 32x32 image, not the 8x8 that ImageNet's stem leaves.
    stem = nn.Sequential(small.conv1, small.bn1, small.relu, small.maxpool, small.layer1)
    assert stem(torch.zeros(2, 3, 32, 32)).shape[-2:] == (32, 32)


def resnet18_cifar_parameters(num_classes: int) -> int:
    """Counted from the architecture's definition, not from torchvision."""

    def conv(c_in: int, c_out: int, k: int) -> int:
        return c_in * c_out * k * k  # no biases: batch norm follows

    def bn(c: int) -> int:
        return 2 * c  # weight and bias

    def block(c_in: int, c_out: int) -> int:
        shortcut = conv(c_in, c_out, 1) + bn(c_out) if c_in != c_out else 0
        return conv(c_in, c_out, 3) + bn(c_out) + conv(c_out, c_out, 3) + bn(c_out) + shortcut

    stem = conv(3, 64, 3) + bn(64)
    stages = sum(
        block(c_in, c_out) + block(c_out, c_out)
        for c_in, c_out in [(64, 64), (64, 128), (128, 256), (256, 512)]
    )
    return stem + stages + 512 * num_classes + num_classes


def test_parameter_counts_are_the_networks_own() -> None:
    assert resnet18_cifar_parameters(10) == 11_173_962  # the usual CIFAR ResNet-18
    resnet18 = architecture("resnet18")
    assert (resnet18.parameters, resnet18.parameters_image_px) == (11_173_962, 32)
    assert (resnet18.family, resnet18.input, resnet18.batch_norm) == ("resnet", "images", True)
    # Counted on the meta device; the same as real networks' (RegNet builds with real tensors).
    for name in ("resnet18", "mobilenet_v3_small", "regnet_x_400mf", "tutorial_cnn"):
        real = build_model(name, 10, image_size=architecture(name).parameters_image_px or 32)
        assert architecture(name).parameters == sum(p.numel() for p in real.parameters()), name
    assert architecture("tutorial_cnn").parameters == 62_006  # the tutorial's CNN
    assert architecture("vgg11").batch_norm is False and architecture("vgg11_bn").batch_norm
    everything = architectures()
    assert [arch.name for arch in everything] == known_names()
    assert all(arch.parameters for arch in everything if arch.input == "images")


def test_a_saved_resnet_loads_with_its_stem_in_eval_mode(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("resnet18", 3, image_size=32).eval()
    path = tmp_path / "model.pt"
    save_model(path, model, arch="resnet18", classes=["a", "b", "c"], image_size=(32, 32))
    saved = load_model(path)
    assert not saved.model.training
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(saved.model(images), model(images), rtol=0, atol=0)


def test_the_tutorial_cnn_takes_16_pixels_and_up() -> None:
    assert architecture("tutorial_cnn").sizes == InputSizes(TUTORIAL_CNN_MIN_PX) == InputSizes(16)
    assert forward(build_model("tutorial_cnn", 10, image_size=16), 16).shape == (2, 10)
    with pytest.raises(ValueError, match="images of 15 pixels are too small"):
        build_model("tutorial_cnn", 10, image_size=15)
