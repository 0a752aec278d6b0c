"""Image tensors as training sees them: uint8 in memory, normalised as they are used."""

import io
from dataclasses import dataclass
from functools import lru_cache

import torch
from PIL import Image

# The tutorial's Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)): pixels in [0, 1] map to [-1, 1].
NORMALIZE_MEAN = (0.5, 0.5, 0.5)
NORMALIZE_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class ImageSet:
    """Images as uint8 (N, C, H, W) and their integer labels (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @staticmethod
    def concat(parts: list["ImageSet"]) -> "ImageSet":
        return ImageSet(
            images=torch.cat([p.images for p in parts]), labels=torch.cat([p.labels for p in parts])
        )

    def subset(self, indices: torch.Tensor) -> "ImageSet":
        return ImageSet(images=self.images[indices], labels=self.labels[indices])

    def to(self, device: torch.device) -> "ImageSet":
        return ImageSet(images=self.images.to(device), labels=self.labels.to(device))


def balanced_indices(labels: torch.Tensor, limit: int | None) -> torch.Tensor:
    """Indices of the first `limit` examples taken round-robin over classes, in data order.

    Each class gives its first examples in turn, so the subset is class-balanced where the data
    allows; once a class runs out the others fill the remaining places.
    """
    count = int(labels.shape[0])
    if limit is None or limit >= count:
        return torch.arange(count)
    per_class = [torch.nonzero(labels == c).flatten() for c in torch.unique(labels, sorted=True)]
    # Rank each example within its class; sorting by (rank, class) interleaves the classes.
    rank = torch.empty(count, dtype=torch.long)
    for members in per_class:
        rank[members] = torch.arange(members.numel())
    order = torch.argsort(rank * (int(labels.max()) + 1) + labels, stable=True)
    return torch.sort(order[:limit]).values


def class_counts(train: ImageSet, test: ImageSet, classes: list[str]) -> dict[str, dict[str, int]]:
    """Examples per class in each split: {"train": {name: n, ...}, "test": {...}}."""
    return {
        split: {name: int((data.labels == index).sum()) for index, name in enumerate(classes)}
        for split, data in (("train", train), ("test", test))
    }


def stratified_split(
    labels: torch.Tensor, fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the examples kept for training and of those held out: round(fraction * n) of
    each class's n examples (at least one, and never all), drawn at random with `seed`."""
    generator = torch.Generator().manual_seed(seed)
    held: list[torch.Tensor] = []
    for label in torch.unique(labels, sorted=True):
        members = torch.nonzero(labels == label).flatten()
        if members.numel() < 2:
            continue  # a class of one example cannot give any away
        count = min(max(1, round(fraction * members.numel())), members.numel() - 1)
        held.append(members[torch.randperm(members.numel(), generator=generator)[:count]])
    held_out = torch.sort(torch.cat(held)).values if held else torch.empty(0, dtype=torch.long)
    keep = torch.ones(labels.shape[0], dtype=torch.bool)
    keep[held_out] = False
    return torch.nonzero(keep).flatten(), held_out


@lru_cache(maxsize=8)
def _mean_and_std(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    # Made once per device: building them per batch would copy from the host at every step.
    mean = torch.tensor(NORMALIZE_MEAN, device=device).view(1, -1, 1, 1)
    std = torch.tensor(NORMALIZE_STD, device=device).view(1, -1, 1, 1)
    return mean, std


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) to float, normalised exactly as in training. Rows of tabular
    features are floats already standardised, and pass through."""
    if images.is_floating_point():
        return images
    mean, std = _mean_and_std(images.device)
    return (images.float() / 255.0 - mean) / std


def png_bytes(image: torch.Tensor) -> bytes:
    """A uint8 (3, H, W) image as a PNG file's bytes, pixel for pixel (PNG is lossless)."""
    pixels = image.to("cpu", torch.uint8).permute(1, 2, 0).contiguous().numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
