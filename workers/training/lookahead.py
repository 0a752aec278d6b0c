"""Lookahead as the airbench paper's code does it: an exponential average of the weights, taken
every few steps with a decay that grows towards the end of training, to which the model's
weights are reset at each update; the average is the model at the end of training."""

from typing import Any

import torch
from torch import nn

LOOKAHEAD_EVERY_STEPS = 5
# The average's decay at step s of n: LOOKAHEAD_DECAY * (s / n) ** LOOKAHEAD_DECAY_POWER, so
# that early on the average follows the weights and late it holds them back.
LOOKAHEAD_DECAY = 0.95**LOOKAHEAD_EVERY_STEPS
LOOKAHEAD_DECAY_POWER = 3


class Lookahead:
    """The average of `model`'s floating-point weights and buffers (the batch norms' running
    statistics too, as in the paper), over a run of `total_steps` steps."""

    def __init__(self, model: nn.Module, total_steps: int) -> None:
        self.model, self.total_steps = model, total_steps
        self.average = {
            name: value.detach().clone()
            for name, value in model.state_dict().items()
            if value.is_floating_point()
        }

    def after_step(self, step: int) -> None:
        """Called after the optimizer's `step`-th step of the run (counted from 1)."""
        if step % LOOKAHEAD_EVERY_STEPS == 0:
            fraction = step / self.total_steps
            self._update(LOOKAHEAD_DECAY * fraction**LOOKAHEAD_DECAY_POWER)

    def finish(self) -> None:
        """The end of training: the model takes the average (the weights of the steps since
        its last update are left out, as in the paper), unless no update ever came."""
        if self.total_steps >= LOOKAHEAD_EVERY_STEPS:
            self._update(1.0)

    @torch.no_grad()
    def _update(self, decay: float) -> None:
        weights = self.model.state_dict()
        for name, average in self.average.items():
            average.lerp_(weights[name], 1 - decay)
            weights[name].copy_(average)

    def state(self) -> dict[str, torch.Tensor]:
        """The average, on the CPU, for a checkpoint."""
        return {name: value.cpu() for name, value in self.average.items()}

    def restore(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            for name, average in self.average.items():
                average.copy_(state[name])
