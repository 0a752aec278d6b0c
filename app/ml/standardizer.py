"""Feature standardisation: statistics from the training rows, kept with the model and applied
to every row it classifies."""

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Standardizer:
    """Feature columns and the statistics that standardise them, kept with the model."""

    columns: list[str]
    mean: torch.Tensor
    std: torch.Tensor

    def apply(self, features: torch.Tensor) -> torch.Tensor:
        return ((features - self.mean) / self.std).float()

    def state(self) -> dict[str, object]:
        return {"columns": self.columns, "mean": self.mean, "std": self.std}

    @staticmethod
    def from_state(state: dict[str, object]) -> "Standardizer":
        columns, mean, std = state["columns"], state["mean"], state["std"]
        assert isinstance(columns, list) and isinstance(mean, torch.Tensor)
        assert isinstance(std, torch.Tensor)
        return Standardizer(list(columns), mean, std)


def standardization(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-column mean and standard deviation (1 where a column is constant)."""
    mean = features.mean(dim=0)
    std = features.std(dim=0, unbiased=False)
    return mean, torch.where(std > 0, std, torch.ones_like(std))
