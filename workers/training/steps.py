"""One optimisation step on one batch, run eagerly or replayed from a captured CUDA graph."""

from typing import Any

import torch
from torch import nn

from workers.training.runtime import Runtime

# Steps run before capture so that lazy allocations (optimizer state, library handles) happen
# outside the graph; the PyTorch documentation's whole-network example warms up 3 times.
GRAPH_WARMUP_STEPS = 3


class TrainStep:
    """Forward, backward and optimizer step on one batch, adding its loss to `loss_sums`.

    `loss_sums` stays on the device, so a step never waits for the device to finish.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        criterion: nn.Module,
        runtime: Runtime,
        loss_sums: torch.Tensor,
        wrapped: nn.Module | None = None,
    ) -> None:
        self.model, self.optimizer, self.criterion = model, optimizer, criterion
        self.runtime, self.loss_sums = runtime, loss_sums
        # What runs the forward pass: `model` itself, or a wrapper sharing its parameters (the
        # DistributedDataParallel one); checkpoints save `model`.
        forward = wrapped or model
        self.forward: nn.Module = torch.compile(forward) if runtime.compile else forward  # type: ignore[assignment]
        self.scaler = (
            torch.amp.GradScaler(runtime.device.type) if runtime.precision == "fp16" else None
        )

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor, scale: float | None = None
    ) -> None:
        """One step; `scale` multiplies the criterion's loss (a rank's share of a batch)."""
        self.optimizer.zero_grad(set_to_none=True)
        dtype = self.runtime.autocast_dtype
        with torch.autocast(self.runtime.device.type, dtype=dtype, enabled=dtype is not None):
            loss = self.criterion(self.forward(images), labels)
            if scale is not None:
                loss = loss * scale
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        self.loss_sums += loss.detach().float()


class GraphedStep:
    """A TrainStep captured once as a CUDA graph and replayed for every full-size batch.

    The batch is copied into fixed input buffers the graph reads; a batch of another size (the
    last, partial one) runs eagerly. The warm-up steps before capture train on those buffers,
    so everything they change (weights, optimizer state, loss sums) is put back afterwards and
    the graphed run computes exactly what the eager one would.

    With `capture=False` (no GPU) the same buffers, warm-up and restore run, and "replay" runs
    the step eagerly: that is how the machinery around the graph is tested on a CPU.
    """

    def __init__(
        self, step: TrainStep, batch_shape: tuple[int, ...], *, capture: bool = True
    ) -> None:
        self.step = step
        device, layout = step.runtime.device, step.runtime.memory_format
        self.static_images = torch.zeros(batch_shape, device=device).contiguous(
            memory_format=layout
        )
        self.static_labels = torch.zeros(batch_shape[0], dtype=torch.long, device=device)
        self.graph: torch.cuda.CUDAGraph | None = None
        if capture:
            self.graph = self._capture()
        else:
            saved = self._training_state()
            self._warm_up()
            self._restore(saved)

    def _capture(self) -> torch.cuda.CUDAGraph:
        saved = self._training_state()
        # Warm-up and capture share one side stream (lazily created library handles belong
        # to the stream they were made on).
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        try:
            with torch.cuda.stream(stream):
                self._warm_up()
            graph = torch.cuda.CUDAGraph()
            # The step unsets the gradients first, so backward allocates them from the graph's
            # own pool and every replay writes them afresh.
            with torch.cuda.graph(graph, stream=stream):
                self.step(self.static_images, self.static_labels)
        finally:
            torch.cuda.current_stream().wait_stream(stream)
            self._restore(saved)
        return graph

    def _warm_up(self) -> None:
        for _ in range(GRAPH_WARMUP_STEPS):
            self.step(self.static_images, self.static_labels)

    def _training_state(self) -> dict[str, Any]:
        optimizer = self.step.optimizer
        return {
            "model": [t.detach().clone() for t in self.step.model.state_dict().values()],
            "optimizer": {
                id(p): {k: v.clone() for k, v in optimizer.state[p].items() if torch.is_tensor(v)}
                for group in optimizer.param_groups
                for p in group["params"]
                if p in optimizer.state
            },
            "loss_sums": self.step.loss_sums.clone(),
        }

    def _restore(self, saved: dict[str, Any]) -> None:
        """Puts back what the warm-up changed, in place: the graph holds these very tensors."""
        with torch.no_grad():
            for tensor, value in zip(
                self.step.model.state_dict().values(), saved["model"], strict=True
            ):
                tensor.copy_(value)
            optimizer = self.step.optimizer
            for group in optimizer.param_groups:
                for p in group["params"]:
                    before = saved["optimizer"].get(id(p), {})
                    for key, value in optimizer.state[p].items():
                        if not torch.is_tensor(value):
                            continue
                        # State born in the warm-up starts from zero, which is what a first
                        # step computes too: SGD's momentum buffer becomes the gradient, Adam's
                        # moments and step count start at 0.
                        value.copy_(before[key]) if key in before else value.zero_()
            self.step.loss_sums.copy_(saved["loss_sums"])

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor, scale: float | None = None
    ) -> None:
        assert scale is None, "a graphed step trains a whole batch in one process"
        if images.shape != self.static_images.shape:
            self.step(images, labels)
            return
        self.static_images.copy_(images)
        self.static_labels.copy_(labels)
        if self.graph is None:
            self.step(self.static_images, self.static_labels)
        else:
            self.graph.replay()
