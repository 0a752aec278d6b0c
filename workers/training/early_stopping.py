"""Early stopping: watch the validation loss, keep the best epoch's weights, say when to stop."""

from typing import Any

import torch
from torch import nn


class EarlyStopping:
    """Stops training once the validation loss has not improved for `patience` epochs.

    Without a patience it watches nothing and never stops. Its state goes into checkpoints, so a
    resumed job keeps its best weights and its count of epochs without improvement.
    """

    def __init__(self, patience: int | None) -> None:
        self.patience = patience
        self.best_epoch: int | None = None
        self.best_loss = float("inf")
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.last_epoch: int | None = None
        self.stopped = False

    def observe(self, epoch: int, validation_loss: float, model: nn.Module) -> None:
        """Take note of an epoch's validation loss (and its weights, if they are the best)."""
        if self.patience is None:
            return
        self.last_epoch = epoch
        if validation_loss < self.best_loss:
            self.best_epoch, self.best_loss = epoch, validation_loss
            self.best_weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        elif self.best_epoch is not None and epoch - self.best_epoch >= self.patience:
            self.stopped = True

    def restore_best(self, model: nn.Module) -> bool:
        """Put the best epoch's weights back into `model`; False when it already has them."""
        if self.best_weights is None or self.best_epoch == self.last_epoch:
            return False
        model.load_state_dict(self.best_weights)
        self.last_epoch = self.best_epoch
        return True

    def state(self) -> dict[str, Any] | None:
        if self.patience is None:
            return None
        return {
            "best_epoch": self.best_epoch,
            "best_loss": self.best_loss,
            "best_weights": self.best_weights,
            "last_epoch": self.last_epoch,
            "stopped": self.stopped,
        }

    def restore(self, state: dict[str, Any] | None) -> None:
        if self.patience is None or state is None:
            return
        self.best_epoch, self.best_loss = state["best_epoch"], state["best_loss"]
        self.best_weights, self.last_epoch = state["best_weights"], state["last_epoch"]
        self.stopped = state["stopped"]
