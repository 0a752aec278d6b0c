"""Every random number generator a training run draws from, saved and restored together."""

import random
from typing import Any

import numpy as np
import torch


def rng_states(shuffle: torch.Generator) -> dict[str, Any]:
    """The state of torch's, CUDA's, Python's and NumPy's generators and of `shuffle`."""
    kind, keys, position, has_gauss, cached = np.random.get_state(legacy=True)
    assert isinstance(keys, np.ndarray)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "shuffle": shuffle.get_state(),
        "python": random.getstate(),
        "numpy": [kind, keys.tolist(), position, has_gauss, cached],
    }


def restore_rng_states(states: dict[str, Any], shuffle: torch.Generator) -> None:
    """Puts back what `rng_states` saved."""
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    shuffle.set_state(states["shuffle"])
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, cached))
