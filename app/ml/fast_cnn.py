"""fast_cnn: a record-class CIFAR network in the style of the airbench paper (Jordan, "94% on
CIFAR-10 in 3.29 seconds on a single GPU", arXiv 2404.00498), written for this service.

Its parts, each of which the paper finds to shorten training:
- a first 2x2 convolution that whitens image patches: its weights are the eigenvectors of the
  training data's patch covariance, each divided by the square root of its eigenvalue (plus a
  small eps), set before training starts (app/ml/whitening.py) and never trained, in both signs
  so that the GELU after it loses nothing;
- three groups of convolution, 2x2 max-pool, batch norm, GELU, convolution, batch norm, GELU;
  the convolutions start as identities on their first channels (dirac initialisation);
- batch norms without a trained scale, whose shift is kept divided by 8 and multiplied back in
  the forward pass: under SGD that is exactly a learning rate 64 times larger for it, its decay
  per step unchanged (Adam, whose steps do not follow a gradient's scale, gains no such factor);
- a global max-pool, and a linear head without bias whose logits are scaled down by 9;
- in eval mode, the average of the logits of each image and its mirror image (test-time flip
  averaging), so that evaluation, serving and exported files all give the same answers.
"""

import torch
import torch.nn.functional as F
from torch import nn

WIDTHS = (64, 256, 256)  # the paper's 94% variant
WHITEN_KERNEL_PX = 2
LOGIT_SCALE = 1 / 9
# The batch norms' shift is kept divided by the square root of this and multiplied back in the
# forward pass, which under SGD is exactly a learning rate this many times larger for it, with
# the same decay per step (not so under Adam, whose steps do not follow a gradient's scale).
BIAS_LEARNING_RATE_SCALE = 64.0
BATCH_NORM_MOMENTUM = 0.4  # PyTorch's sense: the weight of the newest batch (the paper's 0.6)
BATCH_NORM_EPS = 1e-12
# A 2x2 convolution without padding, then three 2x2 pools: 9 pixels leave one.
FAST_CNN_MIN_PX = WHITEN_KERNEL_PX - 1 + 2**3


class ShiftOnlyBatchNorm(nn.Module):
    """Batch norm with a fixed scale of 1 and a learned shift, which under SGD trains
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
        self.whiten.weight.requires_grad_(False)  # set from the data (set_whitening), not trained
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

    def set_whitening(self, filters: torch.Tensor) -> None:
        """Set the whitening convolution to `filters` (C*k*k, C, k, k) and their negatives."""
        weight = self.whiten.weight
        with torch.no_grad():
            weight.copy_(torch.cat((filters, -filters)).to(weight.dtype))
            self.whiten.bias.zero_()  # type: ignore[union-attr]
