"""Starting a network from weights trained elsewhere: which of its layers is the classifier head,
whether a state_dict fits the network, loading one with the head replaced when the classes
differ, and freezing everything but the head."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from app.ml.architectures import architecture
from app.ml.nets import BATCH_NORMS

# Each family's classifier head: the layer whose outputs are the classes, as a path of
# attributes (a negative number indexes a Sequential from its end). Checked for every family
# by tests/ml/test_transfer.py: its tensors are exactly those whose shape depends on the class
# count.
HEADS: dict[str, str] = {
    "tutorial": "fc3",
    "fast": "head",
    "mlp": "layers.-1",
    "alexnet": "classifier.-1",
    "convnext": "classifier.2",  # after its LayerNorm and flatten
    "densenet": "classifier",
    "efficientnet": "classifier.-1",
    "googlenet": "fc",
    "inception": "fc",
    "maxvit": "classifier.-1",
    "mnasnet": "classifier.-1",
    "mobilenetv2": "classifier.-1",
    "mobilenetv3": "classifier.-1",
    "regnet": "fc",
    "resnet": "fc",
    "shufflenetv2": "fc",
    "squeezenet": "classifier.1",  # a 1x1 convolution to the classes, then ReLU and pooling
    "swin_transformer": "head",
    "vgg": "classifier.-1",
    "vision_transformer": "heads.head",
}
# At most this many names of each kind in a message about weights that do not fit.
KEYS_SHOWN = 10

Shapes = Mapping[str, Sequence[int]]


class UnsupportedHead(ValueError):
    """A family whose classifier head is not known: its weights cannot be transferred."""


class WeightsMismatch(ValueError):
    """A state_dict that does not fit the network; the message names the keys."""


@dataclass(frozen=True)
class InitialWeights:
    """Weights a job starts from, before its first step."""

    state_dict: dict[str, torch.Tensor]
    # A registered version's classes, in its outputs' order; None for an uploaded file, whose
    # classes are not known (its head is kept when its shape fits).
    classes: list[str] | None
    source: str  # what they are, for messages: "version 3 of 'cifar10'", "weights wt-..."


def head_of(model: nn.Module, arch: str) -> str:
    """The name of `model`'s classifier head (arch names its family): "fc", "classifier.6"..."""
    family = architecture(arch).family
    path = HEADS.get(family)
    if path is None:
        raise UnsupportedHead(
            f"{arch}'s family ({family}) has no known classifier head, so weights cannot be "
            "transferred to it"
        )
    names: list[str] = []
    module = model
    for part in path.split("."):
        if part.startswith("-"):
            assert isinstance(module, nn.Sequential)
            part = str(len(module) + int(part))
        names.append(part)
        module = module.get_submodule(part)
    return ".".join(names)


def in_head(name: str, head: str) -> bool:
    """Whether the tensor or module called `name` is part of the head `head`."""
    return name == head or name.startswith(head + ".")


def _listed(names: list[str], describe: str) -> str:
    shown = ", ".join(names[:KEYS_SHOWN])
    more = f" and {len(names) - KEYS_SHOWN} more" if len(names) > KEYS_SHOWN else ""
    return f"{len(names)} {describe} ({shown}{more})"


def _shape(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(size) for size in shape) + "]"


def check_fits(given: Shapes, model: nn.Module, head: str, *, network: str) -> bool:
    """Whether the weights of shapes `given` fit `model` (described as `network` in messages):
    WeightsMismatch naming the missing, unexpected and mis-shaped tensors (the first
    KEYS_SHOWN of each) if not. The head is left out: True when it fits too, False when it
    must be replaced (missing, or shaped for another class count)."""
    expected = {name: list(tensor.shape) for name, tensor in model.state_dict().items()}
    body = [name for name in expected if not in_head(name, head)]
    missing = [name for name in body if name not in given]
    unexpected = [name for name in given if name not in expected]
    misshaped = [
        f"{name} {_shape(given[name])} where the model has {_shape(expected[name])}"
        for name in body
        if name in given and list(given[name]) != expected[name]
    ]
    problems = [
        _listed(names, describe)
        for names, describe in (
            (missing, "missing"),
            (unexpected, "unexpected"),
            (misshaped, "mis-shaped"),
        )
        if names
    ]
    if problems:
        raise WeightsMismatch(f"the weights do not fit {network}: {'; '.join(problems)}")
    return all(
        name in given and list(given[name]) == shape
        for name, shape in expected.items()
        if in_head(name, head)
    )


def load_initial_weights(
    model: nn.Module, arch: str, weights: InitialWeights, classes: list[str]
) -> bool:
    """Load `weights` into a freshly built `model` for `classes`; the head keeps its fresh
    initialisation when the weights' head does not fit, or names other classes. True when the
    head was replaced."""
    head = head_of(model, arch)
    state = weights.state_dict
    shapes = {name: list(tensor.shape) for name, tensor in state.items()}
    head_fits = check_fits(shapes, model, head, network=f"{arch} for {len(classes)} classes")
    replace = not head_fits or (weights.classes is not None and weights.classes != classes)
    kept = {name: tensor for name, tensor in state.items() if not (replace and in_head(name, head))}
    with torch.no_grad():
        missing, _ = model.load_state_dict(kept, strict=False)
    assert all(in_head(name, head) for name in missing), missing
    return replace


def split_parameters(model: nn.Module, head: str) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """The head's parameters and the others' (the backbone's), in the model's order."""
    named = list(model.named_parameters())
    return (
        [parameter for name, parameter in named if in_head(name, head)],
        [parameter for name, parameter in named if not in_head(name, head)],
    )


def freeze_backbone(model: nn.Module, head: str) -> list[nn.Module]:
    """Stop training everything but the head; the backbone's batch norms, which must also stop
    updating their running statistics, for the caller to keep in eval mode while it trains."""
    _, backbone = split_parameters(model, head)
    for parameter in backbone:
        parameter.requires_grad_(False)
    return [
        module
        for name, module in model.named_modules()
        if isinstance(module, BATCH_NORMS) and not in_head(name, head)
    ]
