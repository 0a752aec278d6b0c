"""Rows of a table, sent by column name, as a table model's input."""

import torch

from app.errors import InvalidInput
from app.ml.standardizer import Standardizer

MAX_NAMED = 5


def _named(names: list[str]) -> str:
    shown = ", ".join(repr(name) for name in names[:MAX_NAMED])
    return shown + (f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else "")


def column_values(rows: list[dict[str, float]], standardizer: Standardizer) -> torch.Tensor:
    """The rows' raw values in the model's column order, (N, F) float64; 422 naming the first
    row whose columns are not exactly the model's."""
    columns, known = standardizer.columns, set(standardizer.columns)
    for index, row in enumerate(rows):
        missing = [name for name in columns if name not in row]
        unknown = sorted(name for name in row if name not in known)
        if missing or unknown:
            parts = ([f"missing columns {_named(missing)}"] if missing else []) + (
                [f"unknown columns {_named(unknown)}"] if unknown else []
            )
            raise InvalidInput(f"rows[{index}]: {'; '.join(parts)}")
    return torch.tensor([[row[name] for name in columns] for row in rows], dtype=torch.float64)
