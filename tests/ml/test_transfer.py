"""Weights carried from one network to another: every family's classifier head is the layer whose
tensors depend on the class count, weights that do not fit are refused naming their tensors,
the head is replaced when the classes differ, and a frozen backbone trains no parameter."""

import pytest
import torch
from torch import nn

from app.ml.architectures import meta_model, reference_size
from app.ml.nets import build_model
from app.ml.torchvision_nets import FAMILY_SIZES, family_of, sizes_of, torchvision_names
from app.ml.transfer import (
    HEADS,
    InitialWeights,
    UnsupportedHead,
    WeightsMismatch,
    check_fits,
    freeze_backbone,
    head_of,
    in_head,
    load_initial_weights,
)


def one_of_each_family() -> dict[str, str]:
    """A torchvision architecture of each family, the first by name."""
    chosen: dict[str, str] = {}
    for name in torchvision_names():
        chosen.setdefault(family_of(name), name)
    return chosen


TORCHVISION = one_of_each_family()


def class_dependent(arch: str, **options: object) -> list[str]:
    """The tensors whose shape changes with the class count (built on the meta device)."""
    ten, seven = (meta_model(arch, classes, **options).state_dict() for classes in (10, 7))  # type: ignore[arg-type]
    return sorted(name for name, tensor in ten.items() if tensor.shape != seven[name].shape)


def test_every_family_has_a_known_head() -> None:
    assert set(TORCHVISION) == set(FAMILY_SIZES)
    assert set(HEADS) == {*FAMILY_SIZES, "tutorial", "fast", "mlp"}


@pytest.mark.parametrize("arch", sorted(TORCHVISION.values()))
def test_a_torchvision_head_is_exactly_what_depends_on_the_classes(arch: str) -> None:
    size = reference_size(sizes_of(arch))
    model = meta_model(arch, 10, size)
    head = head_of(model, arch)
    in_the_head = sorted(name for name in model.state_dict() if in_head(name, head))
    assert in_the_head == class_dependent(arch, image_size=size)
    assert in_the_head[-1] == f"{head}.weight"  # a bias too, but for maxvit's


def test_our_heads_are_the_last_layers() -> None:
    cnn = meta_model("tutorial_cnn", 10)
    assert head_of(cnn, "tutorial_cnn") == "fc3"
    assert class_dependent("tutorial_cnn") == ["fc3.bias", "fc3.weight"]
    assert head_of(meta_model("fast_cnn", 10), "fast_cnn") == "head"
    assert class_dependent("fast_cnn") == ["head.weight"]  # no bias
    mlp = meta_model("mlp", 10, in_features=5, hidden_layers=[8, 4])
    assert head_of(mlp, "mlp") == "layers.4"  # Linear, ReLU, Linear, ReLU, Linear
    assert class_dependent("mlp", in_features=5, hidden_layers=[8, 4]) == [
        "layers.4.bias",
        "layers.4.weight",
    ]


def test_a_family_without_a_known_head_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(HEADS, "resnet")
    with pytest.raises(UnsupportedHead) as refused:
        head_of(meta_model("resnet18", 10), "resnet18")
    assert str(refused.value) == (
        "resnet18's family (resnet) has no known classifier head, so weights cannot be "
        "transferred to it"
    )


def shapes(model: nn.Module) -> dict[str, list[int]]:
    return {name: list(tensor.shape) for name, tensor in model.state_dict().items()}


def test_weights_fit_whatever_the_head_says() -> None:
    model = meta_model("resnet18", 3)
    ten = shapes(meta_model("resnet18", 10))
    assert check_fits(ten, model, "fc", network="resnet18") is False  # 10 classes, not 3
    assert check_fits(shapes(model), model, "fc", network="resnet18") is True
    headless = {name: shape for name, shape in ten.items() if not name.startswith("fc.")}
    assert check_fits(headless, model, "fc", network="resnet18") is False


def test_weights_that_do_not_fit_are_named_ten_at_most() -> None:
    model = meta_model("resnet18", 10)
    given = shapes(meta_model("resnet34", 10))  # more blocks in every stage
    given["conv1.weight"] = [64, 3, 7, 7]  # ImageNet's stem, not CIFAR's
    del given["bn1.running_var"]
    with pytest.raises(WeightsMismatch) as refused:
        check_fits(given, model, "fc", network="resnet18 for 10 classes")
    unexpected = [name for name in given if name not in shapes(model)]
    assert len(unexpected) == 96
    first_ten = ", ".join(unexpected[:10])
    assert str(refused.value) == (
        "the weights do not fit resnet18 for 10 classes: 1 missing (bn1.running_var); "
        f"96 unexpected ({first_ten} and 86 more); 1 mis-shaped (conv1.weight [64, 3, 7, 7] "
        "where the model has [64, 3, 3, 3])"
    )


def trained_cnn(classes: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return build_model("tutorial_cnn", num_classes=classes)


def test_the_head_is_replaced_when_the_classes_differ() -> None:
    parent = trained_cnn(10, seed=1)
    weights = InitialWeights(parent.state_dict(), None, "parent")
    child = trained_cnn(4, seed=2)
    fresh_head = child.get_parameter("fc3.weight").detach().clone()
    assert load_initial_weights(child, "tutorial_cnn", weights, ["a", "b", "c", "d"]) is True
    for name, tensor in child.state_dict().items():
        if name.startswith("fc3."):
            assert name != "fc3.weight" or torch.equal(tensor, fresh_head)
        else:
            assert torch.equal(tensor, parent.state_dict()[name]), name


@pytest.mark.parametrize(
    ("parent_classes", "replaced"),
    [(None, False), (["a", "b"], False), (["b", "a"], True), (["x", "y"], True)],
)
def test_the_head_is_kept_only_for_the_same_classes(
    parent_classes: list[str] | None, replaced: bool
) -> None:
    parent = trained_cnn(2, seed=1)
    weights = InitialWeights(parent.state_dict(), parent_classes, "parent")
    child = trained_cnn(2, seed=2)
    assert load_initial_weights(child, "tutorial_cnn", weights, ["a", "b"]) is replaced
    for name in ("fc3.weight", "conv1.weight"):
        same = torch.equal(child.get_parameter(name), parent.get_parameter(name))
        assert same is (name == "conv1.weight" or not replaced), name


def test_a_frozen_backbone_trains_only_the_head_and_names_its_batch_norms() -> None:
    model = build_model("resnet18", num_classes=3)
    norms = freeze_backbone(model, "fc")
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["fc.weight", "fc.bias"]
    assert len(norms) == 20 and all(isinstance(norm, nn.BatchNorm2d) for norm in norms)
