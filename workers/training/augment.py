"""Random flips and shifts of training images, done on the device a whole batch at a time.

Each epoch's draws are made up front, one flip and one shift per image, so that an epoch resumed
from a checkpoint sees exactly the augmentations it would have seen.
"""

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AlternatingFlips:
    """The airbench paper's alternating flip: a random half of the images is flipped in epochs
    1, 3, 5, ... and exactly the other half in epochs 2, 4, ..., so that two epochs running
    never show an image the same way. The first epoch's half is drawn from the seed alone, so
    any epoch's flips can be computed again, on a resume too."""

    size: int
    seed: int
    epoch: int  # counted from 1

    def flips(self) -> torch.Tensor:
        """This epoch's flips: bool (size,)."""
        first = torch.rand(self.size, generator=torch.Generator().manual_seed(self.seed)) < 0.5
        return first if self.epoch % 2 == 1 else ~first


@dataclass(frozen=True)
class AugmentPlan:
    """One epoch's augmentation of every training image, indexed by the image's position."""

    flip: torch.Tensor | None  # bool (N,): mirror left-right
    shift: torch.Tensor | None  # int64 (N, 2): crop offset (row, column) in the padded image
    padding: int

    @staticmethod
    def draw(
        size: int,
        generator: torch.Generator,
        *,
        flip: bool,
        padding: int,
        alternating: AlternatingFlips | None = None,
    ) -> "AugmentPlan | None":
        """This epoch's draws, or None when the job augments nothing; with `alternating`, the
        flips are its epoch's rather than drawn."""
        if not flip and padding == 0:
            return None
        flips = None
        if alternating is not None:
            flips = alternating.flips()
        elif flip:
            flips = torch.rand(size, generator=generator) < 0.5
        shifts = (
            torch.randint(0, 2 * padding + 1, (size, 2), generator=generator) if padding else None
        )
        return AugmentPlan(flip=flips, shift=shifts, padding=padding)

    def to(self, device: torch.device) -> "AugmentPlan":
        return AugmentPlan(
            flip=None if self.flip is None else self.flip.to(device),
            shift=None if self.shift is None else self.shift.to(device),
            padding=self.padding,
        )

    def state(self) -> dict[str, Any]:
        return {
            "flip": None if self.flip is None else self.flip.cpu(),
            "shift": None if self.shift is None else self.shift.cpu(),
            "padding": self.padding,
        }

    @staticmethod
    def from_state(state: dict[str, Any] | None) -> "AugmentPlan | None":
        return None if state is None else AugmentPlan(**state)

    def apply(self, images: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """The batch `images` (float N, C, H, W) of the images at `indices`, augmented."""
        if self.flip is not None:
            images = torch.where(self.flip[indices].view(-1, 1, 1, 1), images.flip(3), images)
        if self.shift is not None:
            images = shifted(images, self.shift[indices], self.padding)
        return images


def shifted(images: torch.Tensor, offsets: torch.Tensor, padding: int) -> torch.Tensor:
    """Each image reflect-padded by `padding` and cropped back to its size at its own offset."""
    n, c, h, w = images.shape
    padded = F.pad(images, (padding, padding, padding, padding), mode="reflect")
    rows = offsets[:, :1] + torch.arange(h, device=images.device)  # (N, H)
    cols = offsets[:, 1:] + torch.arange(w, device=images.device)  # (N, W)
    # One gather over the flattened padded image serves every offset at once.
    flat_index = rows[:, :, None] * (w + 2 * padding) + cols[:, None, :]
    index = flat_index.view(n, 1, h * w).expand(n, c, h * w)
    return padded.flatten(2).gather(2, index).view(n, c, h, w)
