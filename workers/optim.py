"""The optimizer and learning-rate schedule a job's config names."""

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, OneCycleLR

if TYPE_CHECKING:
    from workers.train import TrainConfig

ONE_CYCLE_WARMUP_FRACTION = 0.25


def make_optimizer(
    config: "TrainConfig", model: nn.Module, *, capturable: bool
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
    config: "TrainConfig", optimizer: torch.optim.Optimizer, total_steps: int
) -> LRScheduler | None:
    """The schedule stepped after every mini-batch, or None for a constant learning rate."""
    if config.lr_schedule == "constant":
        return None
    if config.lr_schedule == "onecycle":
        return OneCycleLR(
            optimizer,
            max_lr=config.learning_rate,
            total_steps=total_steps,
            pct_start=ONE_CYCLE_WARMUP_FRACTION,
            cycle_momentum=False,  # the job's momentum stays what it says
        )
    if config.lr_schedule == "cosine":
        return CosineAnnealingLR(optimizer, T_max=total_steps)
    raise ValueError(f"unknown lr_schedule {config.lr_schedule!r}")
