"""Where one training process stands among the processes of a data-parallel job."""

from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    """This process's rank among `size` processes; rank 0 leads (it records and saves)."""

    rank: int = 0
    size: int = 1

    @property
    def leader(self) -> bool:
        return self.rank == 0

    def shard(self, indices: torch.Tensor) -> torch.Tensor:
        """This rank's part of a global batch: contiguous, sizes differing by at most one."""
        if self.size == 1:
            return indices
        return indices.tensor_split(self.size)[self.rank]

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """The mean of `tensor` over all ranks (every rank must call this at the same point)."""
        if self.size == 1:
            return tensor
        total = tensor.detach().clone()
        dist.all_reduce(total)
        return total / self.size


SINGLE = Ranks()
