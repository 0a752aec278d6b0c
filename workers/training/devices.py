"""Which device a job trains on in this process, and the speed options it runs with there."""

import math

import torch

from app.cpus import usable_cpus
from app.jobs.config import JobConfig
from workers.training.ranks import SINGLE, Ranks
from workers.training.runtime import Runtime, UnsupportedOption, resolve_runtime


def resolve_device(requested: str, ranks: Ranks = SINGLE) -> torch.device:
    """The torch device for a job's `device` option, in the process of rank `ranks.rank`."""
    if requested == "cpu":
        # More processes than cores only slows every one of them down, and each holds a copy
        # of torch and the model in memory: refuse rather than overload the machine.
        if ranks.size > usable_cpus():
            raise UnsupportedOption(
                f"the job asks for {ranks.size} CPU processes but this worker may use "
                f"{usable_cpus()} cores"
            )
        return torch.device("cpu")
    if torch.cuda.is_available():
        if ranks.size == 1:
            return torch.device("cuda", torch.cuda.current_device())
        if torch.cuda.device_count() < ranks.size:
            raise UnsupportedOption(
                f"the job asks for {ranks.size} GPUs but this worker has "
                f"{torch.cuda.device_count()}"
            )
        return torch.device("cuda", ranks.rank)  # one GPU per rank
    if requested == "cuda":
        raise UnsupportedOption(
            "the job asks for device 'cuda' but this worker has no usable CUDA GPU"
        )
    return torch.device("cpu")


def runtime_for(config: JobConfig, batch_size: int, ranks: Ranks = SINGLE) -> Runtime:
    """The device and speed options the job trains with on this worker (in rank `ranks.rank`),
    for a global batch of `batch_size`."""
    device = resolve_device(config.device_kind, ranks)
    return resolve_runtime(
        device,
        batch_size=math.ceil(batch_size / ranks.size),
        processes=ranks.size,
        model=config.model,
        lr_schedule=config.lr_schedule,
        precision=config.precision,
        # Rows of features have no channels to lay out.
        channels_last=False if config.model == "mlp" else config.channels_last,
        compile=config.compile,
        cuda_graphs=config.cuda_graphs,
        bf16_supported=device.type == "cuda" and torch.cuda.is_bf16_supported(),
    )
