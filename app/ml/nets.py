"""Model architectures, looked up by the name a job gives: our own (the tutorial CNN, fast_cnn,
the MLP) and torchvision's image classifiers."""

from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from app.ml.fast_cnn import FastCNN
from app.ml.torchvision_nets import build_torchvision, torchvision_names


class TutorialCNN(nn.Module):
    """The CNN of PyTorch's CIFAR-10 tutorial: two 5x5 convolutions and three linear layers."""

    def __init__(self, num_classes: int = 10, image_size: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        # Two 5x5 convolutions, each followed by 2x2 pooling: 32 pixels become 5.
        side = ((image_size - 4) // 2 - 4) // 2
        if side < 1:
            raise ValueError(f"images of {image_size} pixels are too small for this model")
        self.fc1 = nn.Linear(16 * side * side, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class MLP(nn.Module):
    """Fully connected layers with ReLU between them, for rows of standardised features."""

    def __init__(self, in_features: int, hidden_layers: list[int], num_classes: int) -> None:
        super().__init__()
        widths = [in_features, *hidden_layers]
        layers: list[nn.Module] = []
        for width_in, width_out in pairwise(widths):
            layers += [nn.Linear(width_in, width_out), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


# Our own architectures; any name torchvision_names() lists is one of torchvision's.
ARCHITECTURES = ("tutorial_cnn", "fast_cnn", "mlp")
DEFAULT_HIDDEN_LAYERS = [64, 32]
# Two 5x5 convolutions and two 2x2 pools leave a 16-pixel image 1 pixel wide.
TUTORIAL_CNN_MIN_PX = 16


def build_model(
    arch: str,
    num_classes: int,
    image_size: int = 32,
    in_features: int | None = None,
    hidden_layers: list[int] | None = None,
) -> nn.Module:
    """A freshly initialised model of the named architecture: the CNN or a torchvision network
    for square images of `image_size`, the MLP for rows of `in_features` numbers."""
    if arch == "tutorial_cnn":
        return TutorialCNN(num_classes=num_classes, image_size=image_size)
    if arch == "fast_cnn":
        return FastCNN(num_classes=num_classes, image_size=image_size)
    if arch == "mlp":
        if in_features is None:
            raise ValueError("the mlp model trains on tabular datasets (rows of numbers)")
        return MLP(in_features, list(hidden_layers or DEFAULT_HIDDEN_LAYERS), num_classes)
    if arch in torchvision_names():
        return build_torchvision(arch, num_classes, image_size)
    raise ValueError(f"unknown model {arch!r}; GET /architectures lists the known ones")


BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
# The images per process that a model with batch norm can always train on.
BATCH_NORM_MIN_IMAGES = 2


def uses_batch_norm(model: nn.Module) -> bool:
    """Whether the model normalises with its batch's statistics when it trains, which one image
    may not give (a single value per channel once the image is pooled down to one pixel)."""
    return any(isinstance(module, BATCH_NORMS) for module in model.modules())
