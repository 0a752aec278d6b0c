"""fast_cnn's whitening layer, set from the training images before the first step: the patch
covariance of an evenly spread sample of them, estimated a chunk at a time on their device."""

import torch
from torch import nn

from app.ml.fast_cnn import WHITEN_KERNEL_PX, FastCNN
from app.ml.images import NORMALIZE_STD, normalize

# The airbench paper adds 5e-4 to each eigenvalue, for pixels normalised by CIFAR-10's own
# standard deviation (about 0.25). This service divides by NORMALIZE_STD (0.5) instead, which
# scales every patch value by 0.25 / 0.5 and every eigenvalue by its square: the same eps for
# our pixels is the paper's scaled alike. It bounds the gain of the noisiest directions.
PAPER_WHITEN_EPS = 5e-4
CIFAR10_PIXEL_STD = 0.25
WHITEN_EPS = PAPER_WHITEN_EPS * (CIFAR10_PIXEL_STD / NORMALIZE_STD[0]) ** 2
# The patch covariance is estimated on at most this many training images (the paper's 5,000).
WHITEN_SAMPLE_IMAGES = 5000
# Patches multiplied out at once (500 CIFAR images' worth): with their normalised images, about
# 50 MB whatever the images' size.
WHITEN_CHUNK_PATCHES = 500 * 31 * 31


def initialise_from_data(
    model: nn.Module, train_images: torch.Tensor, sample: int = WHITEN_SAMPLE_IMAGES
) -> None:
    """What a freshly built model takes from its training images (uint8 N, C, H, W) before its
    first step: fast_cnn its whitening, from `sample` of them; others nothing. A resumed run
    or a fine-tuned one has its weights already and does not call this."""
    if isinstance(model, FastCNN):
        picked = train_images[spread_indices(len(train_images), sample).to(train_images.device)]
        model.set_whitening(whitening_filters(picked, WHITEN_KERNEL_PX))


def spread_indices(size: int, sample: int) -> torch.Tensor:
    """min(size, sample) indices spread evenly from the first of `size` items to the last, not
    the first ones: an uploaded dataset may list its classes in turn."""
    return torch.linspace(0, size - 1, min(size, sample)).round().long()


def whitening_filters(images: torch.Tensor, kernel_px: int) -> torch.Tensor:
    """Filters (C*k*k, C, k, k) that whiten the k x k patches of `images` (uint8 N, C, H, W,
    normalised here as in training): the patch covariance's eigenvectors, each divided by the
    square root of its eigenvalue plus WHITEN_EPS, largest eigenvalue first."""
    eigenvalues, eigenvectors = patch_eigens(images, kernel_px)
    scaled = eigenvectors / torch.sqrt(eigenvalues.clamp(min=0) + WHITEN_EPS).view(-1, 1)
    return scaled.view(-1, images.shape[1], kernel_px, kernel_px)


def patches(images: torch.Tensor, kernel_px: int) -> torch.Tensor:
    """Every kernel_px x kernel_px patch of `images` (N, C, H, W), as F.unfold lays them out
    ((N, C*k*k, patches), a patch's values channel by channel, row by row) but built from
    shifted views, which is several times faster than F.unfold on a CPU."""
    n, channels, height, width = images.shape
    rows, columns = height - kernel_px + 1, width - kernel_px + 1
    shifted = [
        images[:, :, i : i + rows, j : j + columns]
        for i in range(kernel_px)
        for j in range(kernel_px)
    ]
    return torch.stack(shifted, dim=2).reshape(n, channels * kernel_px**2, rows * columns)


def patch_moments(images: torch.Tensor, kernel_px: int) -> torch.Tensor:
    """The mean outer product of every kernel_px x kernel_px patch's values with itself, over
    all patches of `images` (uint8 N, C, H, W, normalised here as in training; or floats,
    taken as normalised): a (C*k*k, C*k*k) float64 matrix.

    The images are normalised and their patches multiplied out a chunk at a time, a chunk
    holding about WHITEN_CHUNK_PATCHES patches whatever the images' size; each chunk's sum is
    added up in float64."""
    n, channels, height, width = images.shape
    size = channels * kernel_px**2
    per_image = (height - kernel_px + 1) * (width - kernel_px + 1)
    chunk_images = max(1, WHITEN_CHUNK_PATCHES // per_image)
    total = torch.zeros(size, size, dtype=torch.float64, device=images.device)
    for start in range(0, n, chunk_images):
        chunk = patches(normalize(images[start : start + chunk_images]).float(), kernel_px)
        flat = chunk.transpose(0, 1).reshape(size, -1)  # (C*k*k, every patch of the chunk)
        total += (flat @ flat.T).double()
    return (total / (n * per_image)).cpu()


def patch_eigens(images: torch.Tensor, kernel_px: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The patch moment matrix's eigenvalues, largest first, and its eigenvectors as rows."""
    eigenvalues, eigenvectors = torch.linalg.eigh(patch_moments(images, kernel_px))
    return eigenvalues.flip(0).float(), eigenvectors.T.flip(0).float()
