"""fast_cnn: a record-class CIFAR network in the style of the airbench paper (Jordan, "94% on
CIFAR-10 in 3.29 seconds on a single GPU", arXiv 2404.00498), written for this service.

Its parts, each of which the paper finds to shorten training:
- a first 2x2 convolution that whitens image patches: its weights are the eigenvectors of the
  training data's patch covariance, scaled by their eigenvalues (set by `whiten_from`, before
  training starts; they never train), in both signs so that the GELU after it loses nothing;
- three groups of convolution, 2x2 max-pool, batch norm, GELU, convolution, batch norm, GELU;
  the convolutions start as identities on their first channels (dirac initialisation);
- batch norms without a trained scale, whose shift trains 64 times faster than the weights;
- a global max-pool, and a linear head without bias whose logits are scaled down by 9;
- in eval mode, the average of the logits of each image and its mirror image (test-time flip
  averaging), so that evaluation, serving and exported files all give the same answers.
"""

import torch
import torch.nn.functional as F
from torch import nn

WIDTHS = (64, 256, 256)  # the paper's 94% variant
WHITEN_KERNEL_PX = 2
# Eigenvalues below this scale are not blown up: it bounds the gain of noise directions.
WHITEN_EPS = 5e-4
# The patch covariance is estimated on at most this many training images (the paper's 5,000).
WHITEN_SAMPLE_IMAGES = 5000
WHITEN_CHUNK_IMAGES = 500  # images whose patches are multiplied out at once
LOGIT_SCALE = 1 / 9
# The batch norms' shift learns this many times faster than the other weights (with the same
# decay per step): it is kept divided by the square root of this and multiplied back in the
# forward pass, which under SGD is the same as a learning rate this many times larger.
BIAS_LEARNING_RATE_SCALE = 64.0
BATCH_NORM_MOMENTUM = 0.4  # PyTorch's sense: the weight of the newest batch (the paper's 0.6)
BATCH_NORM_EPS = 1e-12
# A 2x2 convolution without padding, then three 2x2 pools: 9 pixels leave one.
FAST_CNN_MIN_PX = WHITEN_KERNEL_PX - 1 + 2**3


class ShiftOnlyBatchNorm(nn.Module):
    """Batch norm with a fixed scale of 1 and a learned shift, which trains
    BIAS_LEARNING_RATE_SCALE times faster than the weights it sits between."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(
            channels, eps=BATCH_NORM_EPS, momentum=BATCH_NORM_MOMENTUM, affine=False
        )
        self.shift = nn.Parameter(torch.zeros(channels))
        self.shift_gain = BIAS_LEARNING_RATE_SCALE**0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x) + (self.shift * self.shift_gain).view(1, -1, 1, 1).to(x.dtype)


def _identity_conv(channels_in: int, channels_out: int) -> nn.Conv2d:
    """A 3x3 convolution that starts as the identity on its first min(in, out) channels."""
    conv = nn.Conv2d(channels_in, channels_out, kernel_size=3, padding="same", bias=False)
    with torch.no_grad():
        nn.init.dirac_(conv.weight[:channels_in])
    return conv


class ConvGroup(nn.Module):
    """Convolution, 2x2 max-pool, batch norm, GELU, convolution, batch norm, GELU."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.conv1 = _identity_conv(channels_in, channels_out)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = ShiftOnlyBatchNorm(channels_out)
        self.conv2 = _identity_conv(channels_out, channels_out)
        self.norm2 = ShiftOnlyBatchNorm(channels_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.norm1(self.pool(self.conv1(x))))
        return F.gelu(self.norm2(self.conv2(x)))


class FastCNN(nn.Module):
    """The network; see the module's docstring."""

    def __init__(self, num_classes: int = 10, image_size: int = 32) -> None:
        super().__init__()
        if image_size < FAST_CNN_MIN_PX:
            raise ValueError(
                f"fast_cnn takes images of at least {FAST_CNN_MIN_PX} pixels, not {image_size}"
            )
        patch_values = 3 * WHITEN_KERNEL_PX**2
        self.whiten = nn.Conv2d(3, 2 * patch_values, WHITEN_KERNEL_PX, bias=True)
        self.whiten.weight.requires_grad_(False)  # set from the data (whiten_from), not trained
        widths = (2 * patch_values, *WIDTHS)
        self.groups = nn.Sequential(
            *(ConvGroup(widths[i], widths[i + 1]) for i in range(len(WIDTHS)))
        )
        self.head = nn.Linear(widths[-1], num_classes, bias=False)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = self.groups(F.gelu(self.whiten(x)))
        x = torch.amax(x, dim=(2, 3))  # global max-pool: any size the pools leave
        return self.head(x) * LOGIT_SCALE

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self.logits(x)
        return (self.logits(x) + self.logits(x.flip(3))) / 2

    def whiten_from(self, images: torch.Tensor) -> None:
        """Set the whitening convolution from normalised training images (float N, 3, H, W)."""
        eigenvalues, eigenvectors = patch_eigens(images, WHITEN_KERNEL_PX)
        scaled = eigenvectors / torch.sqrt(eigenvalues.clamp(min=0) + WHITEN_EPS).view(-1, 1)
        filters = scaled.view(-1, 3, WHITEN_KERNEL_PX, WHITEN_KERNEL_PX)
        weight = self.whiten.weight
        with torch.no_grad():
            weight.copy_(torch.cat((filters, -filters)).to(weight.dtype))
            self.whiten.bias.zero_()  # type: ignore[union-attr]


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
    all patches of `images` (float N, C, H, W): a (C*k*k, C*k*k) float64 matrix.

    The patches are multiplied out a chunk of images at a time (all of 5,000 CIFAR images'
    patches at once take about 230 MB), each chunk's sum added up in float64."""
    size = images.shape[1] * kernel_px**2
    total = torch.zeros(size, size, dtype=torch.float64, device=images.device)
    count = 0
    for start in range(0, len(images), WHITEN_CHUNK_IMAGES):
        chunk = patches(images[start : start + WHITEN_CHUNK_IMAGES].float(), kernel_px)
        flat = chunk.transpose(0, 1).reshape(size, -1)  # (C*k*k, every patch of the chunk)
        total += (flat @ flat.T).double()
        count += flat.shape[1]
    return (total / count).cpu()


def patch_eigens(images: torch.Tensor, kernel_px: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The patch moment matrix's eigenvalues, largest first, and its eigenvectors as rows."""
    eigenvalues, eigenvectors = torch.linalg.eigh(patch_moments(images, kernel_px))
    return eigenvalues.flip(0).float(), eigenvectors.T.flip(0).float()
