"""What "auto" means for each speed option, on a CPU and on a GPU (decided without one)."""

import pytest
import torch

from workers.training.runtime import Runtime, UnsupportedOption, resolve_runtime

CPU = torch.device("cpu")
GPU = torch.device("cuda", 0)  # only a name here: deciding needs no GPU


def auto(device: torch.device, batch_size: int, **given: object) -> Runtime:
    options: dict[str, object] = {
        "lr_schedule": "constant",
        "precision": "auto",
        "channels_last": "auto",
        "compile": "auto",
        "cuda_graphs": "auto",
        "bf16_supported": True,
    }
    options.update(given)
    return resolve_runtime(device, batch_size=batch_size, **options)  # type: ignore[arg-type]


def test_on_a_cpu_auto_is_plain_fp32_with_one_thread_for_tiny_batches() -> None:
    assert auto(CPU, 4) == Runtime(CPU, "fp32", False, False, False, threads=1, onednn=False)
    assert auto(CPU, 16).threads == 1
    assert auto(CPU, 17) == Runtime(CPU, "fp32", False, False, False, threads=None, onednn=True)


def test_on_a_gpu_graphs_replay_and_large_graphed_batches_use_bf16_and_nhwc() -> None:
    assert auto(GPU, 4) == Runtime(GPU, "fp32", False, False, True, threads=None)
    assert auto(GPU, 255) == Runtime(GPU, "fp32", False, False, True, threads=None)
    assert auto(GPU, 256) == Runtime(GPU, "bf16", True, False, True, threads=None)
    assert auto(GPU, 512, bf16_supported=False).precision == "fp32"


def test_fast_cnn_on_a_gpu_trains_in_bf16_channels_last_even_eagerly() -> None:
    for batch_size, schedule in ((1024, "warmup_linear"), (64, "constant")):
        runtime = auto(GPU, batch_size, lr_schedule=schedule, model="fast_cnn")
        assert (runtime.precision, runtime.channels_last) == ("bf16", True)
    assert auto(GPU, 1024, model="fast_cnn", bf16_supported=False).precision == "fp32"
    fixed = auto(GPU, 1024, model="fast_cnn", precision="fp32", channels_last=False)
    assert (fixed.precision, fixed.channels_last) == ("fp32", False)
    assert auto(CPU, 1024, model="fast_cnn") == Runtime(CPU, "fp32", False, False, False, None)


def test_eager_gpu_steps_stay_fp32_nchw_at_any_batch_size() -> None:
    # Eagerly, the casts bf16 adds cost more than its arithmetic saves for this small network.
    for given in ({"lr_schedule": "onecycle"}, {"cuda_graphs": False}, {"compile": True}):
        runtime = auto(GPU, 512, **given)
        assert (runtime.precision, runtime.channels_last, runtime.cuda_graphs) == (
            "fp32",
            False,
            False,
        )


@pytest.mark.parametrize(
    "given", [{"lr_schedule": "onecycle"}, {"precision": "fp16"}, {"compile": True}]
)
def test_auto_graphs_step_aside_for_what_a_graph_cannot_hold(given: dict[str, object]) -> None:
    assert not auto(GPU, 4, **given).cuda_graphs


def test_options_the_job_fixes_are_kept() -> None:
    fixed = auto(CPU, 4, precision="bf16", channels_last=True, compile=True)
    # A compiled model keeps oneDNN: compiled graphs are traced with its output layouts.
    assert fixed == Runtime(CPU, "bf16", True, True, False, threads=1, onednn=True)
    assert not auto(GPU, 4, cuda_graphs=False).cuda_graphs
    assert not auto(GPU, 512, channels_last=False).channels_last


def test_graphs_asked_for_on_a_cpu_is_a_clear_error() -> None:
    with pytest.raises(UnsupportedOption, match="asks for cuda_graphs but trains on cpu"):
        auto(CPU, 4, cuda_graphs=True)


def test_threads_and_kernels_are_the_jobs_only_while_it_trains() -> None:
    before = torch.get_num_threads()
    assert torch.backends.mkldnn.enabled
    with auto(CPU, 4).applied():
        assert torch.get_num_threads() == 1
        assert not torch.backends.mkldnn.enabled
    assert torch.get_num_threads() == before
    assert torch.backends.mkldnn.enabled


def test_the_description_names_every_choice() -> None:
    assert auto(CPU, 4).describe() == "cpu (fp32, NCHW, eager, 1 thread, native convolutions)"
    assert auto(GPU, 4).describe() == "cuda:0 (fp32, NCHW, eager, CUDA graphs)"
