"""A model with its preprocessing inside, so that an exported file takes what a user has: a uint8
batch of RGB pixels (N, H, W, 3), or a table's raw feature values (N, F), and gives each class's
probability."""

import torch
from torch import nn

from app.ml.checkpoints import SavedModel
from app.ml.images import NORMALIZE_MEAN, NORMALIZE_STD


class ImageClassifier(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(NORMALIZE_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(NORMALIZE_STD).view(1, 3, 1, 1))

    mean: torch.Tensor
    std: torch.Tensor

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        pixels = image.permute(0, 3, 1, 2).float() / 255.0
        return torch.softmax(self.model((pixels - self.mean) / self.std), dim=1)


class TableClassifier(nn.Module):
    def __init__(self, model: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", mean.float())
        self.register_buffer("std", std.float())

    mean: torch.Tensor
    std: torch.Tensor

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model((features.float() - self.mean) / self.std), dim=1)


def serving_module(saved: SavedModel) -> tuple[nn.Module, torch.Tensor]:
    """The model with its preprocessing, on the CPU in eval mode, and an example input."""
    standardizer = saved.standardizer
    model = saved.model.cpu().eval()
    if standardizer is None:
        height, width = saved.image_size
        example = torch.zeros((2, height, width, 3), dtype=torch.uint8)
        return ImageClassifier(model).eval(), example
    wrapped = TableClassifier(model, standardizer.mean, standardizer.std).eval()
    return wrapped, torch.zeros((2, len(standardizer.columns)), dtype=torch.float32)


def input_name(saved: SavedModel) -> str:
    return "image" if saved.standardizer is None else "features"
