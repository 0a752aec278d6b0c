"""What this worker process offers: CPU cores, GPUs and their memory."""

import os
import socket

import torch

from app.cpus import usable_cpus
from app.jobs.worker_registry import Gpu, WorkerOffer


def local_gpus() -> tuple[Gpu, ...]:
    """The CUDA GPUs this process sees (CUDA_VISIBLE_DEVICES narrows them)."""
    if not torch.cuda.is_available():
        return ()
    gpus = []
    for index in range(torch.cuda.device_count()):
        properties = torch.cuda.get_device_properties(index)
        gpus.append(Gpu(index, properties.name, properties.total_memory // 2**20))
    return tuple(gpus)


def detect_offer() -> WorkerOffer:
    return WorkerOffer(
        hostname=socket.gethostname(),
        pid=os.getpid(),
        cpus=usable_cpus(),
        torch_version=torch.__version__,
        gpus=local_gpus(),
    )
