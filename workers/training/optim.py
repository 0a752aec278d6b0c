"""The optimizer and learning-rate schedule a job's config names."""

import math

import torch
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler

from app.jobs.config import JobConfig

ONE_CYCLE_WARMUP_FRACTION = 0.25
ONE_CYCLE_START_DIVISOR = 25.0  # the warm-up starts at learning_rate / 25 ...
ONE_CYCLE_END_DIVISOR = 1e4  # ... and the run ends at that / 10,000 (OneCycleLR's defaults)


def _cosine(start: float, end: float, fraction: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)


class OneCycle(LRScheduler):
    """PyTorch's OneCycleLR (cosine up to the peak, then down; momentum left alone), computed
    the same way, but defined for runs of any length: OneCycleLR divides by zero when its
    warm-up ends exactly at step 0, as in a run of 4 steps.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, peak_lr: float, total_steps: int) -> None:
        self.peak_lr, self.total_steps = peak_lr, total_steps
        self.start_lr = peak_lr / ONE_CYCLE_START_DIVISOR
        self.end_lr = self.start_lr / ONE_CYCLE_END_DIVISOR
        self.peak_step = ONE_CYCLE_WARMUP_FRACTION * total_steps - 1
        super().__init__(optimizer)

    def get_lr(self) -> list[float | torch.Tensor]:
        step = self.last_epoch
        if self.peak_step > 0 and step <= self.peak_step:
            lr = _cosine(self.start_lr, self.peak_lr, step / self.peak_step)
        else:  # a warm-up that ends at step 0 or before has nothing to climb
            fraction = (step - self.peak_step) / (self.total_steps - 1 - self.peak_step)
            lr = _cosine(self.peak_lr, self.end_lr, fraction)
        return [lr for _ in self.optimizer.param_groups]


def make_optimizer(
    config: JobConfig, model: nn.Module, *, capturable: bool
) -> torch.optim.Optimizer:
    """SGD or Adam over the model's parameters; `capturable` when a CUDA graph will replay it."""
    if config.optimizer == "sgd":
        # SGD keeps no step count on the host, so its step replays in a graph as it is.
        return torch.optim.SGD(
            model.parameters(),
            lr=config.learning_rate,
            momentum=config.momentum,
            # Without momentum Nesterov's step is plain SGD's, which PyTorch insists on.
            nesterov=config.nesterov and config.momentum > 0,
            weight_decay=config.weight_decay,
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(
            model.parameters(),
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
        return OneCycle(optimizer, peak_lr=config.learning_rate, total_steps=total_steps)
    if config.lr_schedule == "cosine":
        return CosineAnnealingLR(optimizer, T_max=total_steps)
    raise ValueError(f"unknown lr_schedule {config.lr_schedule!r}")
