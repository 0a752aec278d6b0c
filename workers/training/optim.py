"""The optimizer and learning-rate schedule a job's config names."""

import math
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler

from app.jobs.config import JobConfig
from app.ml.transfer import split_parameters

ONE_CYCLE_WARMUP_FRACTION = 0.25
ONE_CYCLE_START_DIVISOR = 25.0  # the warm-up starts at learning_rate / 25 ...
ONE_CYCLE_END_DIVISOR = 1e4  # ... and the run ends at that / 10,000 (OneCycleLR's defaults)


def _cosine(start: float, end: float, fraction: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)


class OneCycle(LRScheduler):
    """PyTorch's OneCycleLR (cosine up to the peak, then down; momentum left alone), computed
    the same way, but defined for runs of any length: OneCycleLR divides by zero when its
    warm-up ends exactly at step 0, as in a run of 4 steps. Each parameter group peaks at the
    learning rate it was made with.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, total_steps: int) -> None:
        self.total_steps = total_steps
        self.peak_step = ONE_CYCLE_WARMUP_FRACTION * total_steps - 1
        super().__init__(optimizer)

    def get_lr(self) -> list[float | torch.Tensor]:
        return [self._lr(float(peak_lr)) for peak_lr in self.base_lrs]

    def _lr(self, peak_lr: float) -> float:
        step = self.last_epoch
        start_lr = peak_lr / ONE_CYCLE_START_DIVISOR
        if self.peak_step > 0 and step <= self.peak_step:
            return _cosine(start_lr, peak_lr, step / self.peak_step)
        # A warm-up that ends at step 0 or before has nothing to climb.
        fraction = (step - self.peak_step) / (self.total_steps - 1 - self.peak_step)
        return _cosine(peak_lr, start_lr / ONE_CYCLE_END_DIVISOR, fraction)


# warmup_linear: from this fraction of the learning rate ...
WARMUP_START_FRACTION = 0.2
WARMUP_STEPS_FRACTION = 0.23  # ... up to all of it over this fraction of the steps ...
DECAY_END_FRACTION = 0.07  # ... then down to this fraction of it at the last step


class WarmupLinear(LRScheduler):
    """A linear rise from WARMUP_START_FRACTION of each group's learning rate to all of it
    over the first WARMUP_STEPS_FRACTION of the steps, then a linear fall to
    DECAY_END_FRACTION of it at the last step: the airbench paper's schedule. A function of
    the step alone, so that a restored schedule continues exactly."""

    def __init__(self, optimizer: torch.optim.Optimizer, total_steps: int) -> None:
        self.total_steps = total_steps
        self.peak_step = int(WARMUP_STEPS_FRACTION * total_steps)
        super().__init__(optimizer)

    def get_lr(self) -> list[float | torch.Tensor]:
        return [float(peak_lr) * self.fraction(self.last_epoch) for peak_lr in self.base_lrs]

    def fraction(self, step: int) -> float:
        """The fraction of the peak learning rate at `step` (0 is the first)."""
        if step < self.peak_step:
            return WARMUP_START_FRACTION + (1 - WARMUP_START_FRACTION) * step / self.peak_step
        last = max(self.total_steps - 1, self.peak_step + 1)
        done = min(1.0, (step - self.peak_step) / (last - self.peak_step))
        return 1 + (DECAY_END_FRACTION - 1) * done


def parameter_groups(
    model: nn.Module, head: str | None, backbone_learning_rate: float | None
) -> list[dict[str, Any]]:
    """What the optimizer trains: every parameter that needs a gradient (a frozen backbone's do
    not), in one group at the job's learning rate; with `backbone_learning_rate`, the head's
    (named `head`) in that group and the backbone's in a second one at that rate."""
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    if backbone_learning_rate is None:
        return [{"params": trainable}]
    assert head is not None
    head_parameters, backbone = split_parameters(model, head)
    return [{"params": head_parameters}, {"params": backbone, "lr": backbone_learning_rate}]


def make_optimizer(
    config: JobConfig, groups: list[dict[str, Any]], *, capturable: bool
) -> torch.optim.Optimizer:
    """SGD or Adam over the parameter groups (learning_rate where a group sets none);
    `capturable` when a CUDA graph will replay it."""
    if config.optimizer == "sgd":
        # SGD keeps no step count on the host, so its step replays in a graph as it is.
        return torch.optim.SGD(
            groups,
            lr=config.learning_rate,
            momentum=config.momentum,
            # Without momentum Nesterov's step is plain SGD's, which PyTorch insists on.
            nesterov=config.nesterov and config.momentum > 0,
            weight_decay=config.weight_decay,
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(
            groups,
            lr=config.learning_rate,
            weight_decay=config.weight_decay,
            capturable=capturable,
        )
    raise ValueError(f"unknown optimizer {config.optimizer!r}")


def make_lr_schedule(
    config: JobConfig, optimizer: torch.optim.Optimizer, total_steps: int
) -> LRScheduler | None:
    """The schedule stepped after every mini-batch, or None for a constant learning rate."""
    if config.lr_schedule == "constant":
        return None
    if config.lr_schedule == "onecycle":
        return OneCycle(optimizer, total_steps=total_steps)
    if config.lr_schedule == "cosine":
        return CosineAnnealingLR(optimizer, T_max=total_steps)
    if config.lr_schedule == "warmup_linear":
        return WarmupLinear(optimizer, total_steps=total_steps)
    raise ValueError(f"unknown lr_schedule {config.lr_schedule!r}")
