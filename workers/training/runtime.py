"""How a job runs on this worker's device: precision, memory layout, compilation, graphs, threads.

A job may fix each speed option or leave it "auto"; the choices for "auto" are made here, from
the device and the recipe, so that one place says what "auto" means.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, cast, get_args

import torch

from app.cpus import usable_cpus

Precision = Literal["fp32", "bf16", "fp16"]

# The tutorial CNN is so small that an eager GPU step is bound by kernel launches at every batch
# size measured (4 to 1,024 on an H200, benchmarks/step_bench.py): replaying a captured graph
# pays everywhere (27,849 against 2,915 images/s at batch 4, 741,961 against 313,846 at 512),
# and eagerly bf16 only adds cast kernels (253,593 against 313,846 at 512). Once graphed, bf16
# and the NHWC layout pay from this batch size on (868,072 against 741,961 at 512, 649,061
# against 585,237 at 256; at 64 fp32 NCHW is faster).
GRAPHED_BF16_BATCH_SIZE = 256
# With batches this small a CPU step is a string of tiny kernels. A second thread does not speed
# them up (measured at batch 4 on 2 cores: 1,630-1,815 us a step with 1 thread, 1,523-1,837 with
# 2), so one thread trains and the other cores stay free for the API and the heartbeat; and
# PyTorch's own convolution beats oneDNN's at this size (median 1,462 against 1,673 us a step
# over 6 alternating rounds), while oneDNN is 4x faster at batch 256.
SMALL_CPU_BATCH_SIZE = 16
# Networks wide enough that bf16 and the NHWC layout pay on a GPU even eagerly: fast_cnn's
# 256-channel convolutions are bound by arithmetic, not launches, and the airbench paper trains
# it in half precision, channels-last.
LOW_PRECISION_NETWORKS = ("fast_cnn",)


class UnsupportedOption(ValueError):
    """The job fixes an option this worker's device cannot provide."""


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    precision: Precision
    channels_last: bool
    compile: bool
    cuda_graphs: bool
    threads: int | None  # CPU threads for the job; None keeps torch's default
    onednn: bool = True  # oneDNN (mkldnn) kernels for CPU convolutions

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def describe(self) -> str:
        options = [
            self.precision,
            "channels_last" if self.channels_last else "NCHW",
            "compiled" if self.compile else "eager",
        ]
        if self.cuda_graphs:
            options.append("CUDA graphs")
        if self.threads is not None:
            options.append(f"{self.threads} thread{'s' if self.threads > 1 else ''}")
        if not self.onednn:
            options.append("native convolutions")
        return f"{self.device} ({', '.join(options)})"

    @contextmanager
    def applied(self) -> Iterator[None]:
        """Sets the job's CPU threads and kernels for the block, then puts the worker's back."""
        previous_threads, previous_onednn = torch.get_num_threads(), torch.backends.mkldnn.enabled
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        torch.backends.mkldnn.enabled = self.onednn  # type: ignore[assignment]
        try:
            yield
        finally:
            torch.set_num_threads(previous_threads)
            torch.backends.mkldnn.enabled = previous_onednn  # type: ignore[assignment]


def resolve_runtime(
    device: torch.device,
    *,
    batch_size: int,
    lr_schedule: str,
    precision: str,
    channels_last: bool | str,
    compile: bool | str,
    cuda_graphs: bool | str,
    bf16_supported: bool,
    processes: int = 1,
    model: str = "",
) -> Runtime:
    """The options one of a job's `processes` trains with on `device`, each "auto" decided;
    `batch_size` is what this process trains on at a step, `model` the network's name."""
    on_gpu = device.type == "cuda"
    if precision != "auto" and precision not in get_args(Precision):
        raise ValueError(f"unknown precision {precision!r}")
    if compile == "auto":
        # Compiling takes tens of seconds, longer than a whole fast recipe of this model trains.
        compile = False
    if cuda_graphs == "auto":
        # A graph replays fixed values: the learning rate too, so only a constant one.
        # Several processes synchronise gradients between steps, outside any one graph.
        cuda_graphs = (
            on_gpu
            and lr_schedule == "constant"
            and precision != "fp16"
            and not compile
            and processes == 1
        )
    elif cuda_graphs and not on_gpu:
        raise UnsupportedOption(
            f"the job asks for cuda_graphs but trains on {device}; CUDA graphs need a CUDA GPU"
        )
    elif cuda_graphs and processes > 1:
        raise UnsupportedOption("cuda_graphs needs a job trained by one process")
    low_precision_pays = model in LOW_PRECISION_NETWORKS or (
        bool(cuda_graphs) and batch_size >= GRAPHED_BF16_BATCH_SIZE
    )
    chosen: Precision
    if precision == "auto":
        chosen = "bf16" if on_gpu and low_precision_pays and bf16_supported else "fp32"
    else:
        chosen = cast(Precision, precision)
    if channels_last == "auto":
        channels_last = on_gpu and low_precision_pays
    small_cpu_batch = not on_gpu and batch_size <= SMALL_CPU_BATCH_SIZE
    threads = None
    if small_cpu_batch:
        threads = 1
    elif not on_gpu and processes > 1:
        threads = max(1, usable_cpus() // processes)  # the processes share the cores
    return Runtime(
        device=device,
        precision=chosen,
        channels_last=bool(channels_last),
        compile=bool(compile),
        cuda_graphs=bool(cuda_graphs),
        threads=threads,
        # Compiled graphs are traced with oneDNN's output layouts; switching it off breaks them.
        onednn=not small_cpu_batch or bool(compile),
    )
