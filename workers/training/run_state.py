"""The state of one training run: the model, optimizer, schedule, batch order, random state and
history, which a snapshot captures and a resume restores exactly."""

import copy
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from app.jobs.records import EpochRecord, LossRecord
from app.ml.images import normalize
from app.ml.nets import BATCH_NORM_MIN_IMAGES, build_model, uses_batch_norm
from app.ml.transfer import freeze_backbone, head_of, load_initial_weights
from app.ml.whitening import initialise_from_data
from workers.training.augment import AlternatingFlips, AugmentPlan
from workers.training.early_stopping import EarlyStopping
from workers.training.hooks import TrainInputs
from workers.training.lookahead import Lookahead
from workers.training.optim import make_lr_schedule, make_optimizer, parameter_groups
from workers.training.ranks import SINGLE, Ranks
from workers.training.rng import restore_rng_states, rng_states
from workers.training.runtime import Runtime
from workers.training.steps import GraphedStep, TrainStep

log = logging.getLogger("trainserve.worker")

SNAPSHOT_FORMAT = 1


def snapshot_history(
    snapshot: dict[str, Any] | None,
) -> tuple[list[LossRecord], list[EpochRecord]]:
    """The loss points and epoch results a snapshot holds (none without a snapshot)."""
    if snapshot is None:
        return [], []
    return (
        [LossRecord(**point) for point in snapshot["loss_history"]],
        [EpochRecord(**epoch) for epoch in snapshot["epochs"]],
    )


def steps_per_epoch(size: int, batch_size: int, processes: int, *, batch_norm: bool) -> int:
    """Batches of `batch_size` in an epoch of `size` images, a partial last one included; but a
    model with batch norm leaves out a last batch that would give a process fewer than
    BATCH_NORM_MIN_IMAGES (the next epoch's order puts those images in other batches)."""
    steps = math.ceil(size / batch_size)
    left = size % batch_size
    if batch_norm and steps > 1 and 0 < left < BATCH_NORM_MIN_IMAGES * processes:
        return steps - 1
    return steps


@dataclass
class Position:
    """Where the loop is: `step` mini-batches of `epoch` are done."""

    epoch: int
    step: int


class RunState:
    """The state of one training run, which a snapshot captures and a resume restores."""

    def __init__(self, inputs: TrainInputs, runtime: Runtime, ranks: Ranks = SINGLE) -> None:
        config = inputs.config
        self.config, self.runtime, device = config, runtime, runtime.device
        self.ranks = ranks
        self.batch_size = inputs.batch_size
        # Every rank draws the same initial weights, batch order and augmentations.
        torch.manual_seed(config.seed)
        self.shuffle = torch.Generator().manual_seed(config.seed)
        examples = inputs.train_set.images.shape
        self.model = build_model(
            config.model,
            num_classes=len(inputs.classes),
            image_size=examples[-1],
            in_features=examples[1] if len(examples) == 2 else None,
            hidden_layers=config.hidden_layers,
        )
        self.head, self.frozen_norms = self._fine_tuned(inputs, ranks)
        self.model.to(device).to(memory_format=runtime.memory_format)
        self.train_data = inputs.train_set.to(device)
        # Training time counts from here: what the model takes from the data is part of it, as
        # in the airbench paper's timing.
        self._started = time.monotonic()
        if inputs.resume is None and config.init_from is None:
            # What the model takes from the data (fast_cnn's whitening) is computed on the
            # device, before DistributedDataParallel copies rank 0's weights to the others;
            # a resumed run has its weights from its snapshot instead.
            initialise_from_data(self.model, self.train_data.images)
        self.wrapped: nn.Module | None = None
        if ranks.size > 1:
            # Averages the ranks' gradients during backward; the ranks' losses are scaled so
            # that this average is the gradient of the whole batch's mean loss.
            self.wrapped = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None
            )
        groups = parameter_groups(self.model, self.head, config.backbone_learning_rate)
        self.optimizer = make_optimizer(config, groups, capturable=runtime.cuda_graphs)
        self.test_data = inputs.test_set.to(device)
        validation = inputs.validation_set
        self.validation_data = None if validation is None else validation.to(device)
        self.early_stopping = EarlyStopping(config.early_stopping_patience)
        self.size = len(self.train_data)
        self.steps_per_epoch = steps_per_epoch(
            self.size, self.batch_size, ranks.size, batch_norm=uses_batch_norm(self.model)
        )
        total_steps = config.epochs * self.steps_per_epoch
        self.schedule = make_lr_schedule(config, self.optimizer, total_steps=total_steps)
        # Made after DistributedDataParallel has given every rank rank 0's weights to average.
        self.lookahead = Lookahead(self.model, total_steps) if config.lookahead else None
        self.at = Position(epoch=1, step=0)
        self.order: torch.Tensor | None = None
        self.augment: AugmentPlan | None = None
        # [loss since the last loss point, loss this epoch]; stays on the device between reads
        self.loss_sums = torch.zeros(2, device=device)
        self.loss_history: list[LossRecord] = []
        self.epoch_history: list[EpochRecord] = []
        self.scaler: torch.amp.GradScaler | None = None
        self._scaler_state: dict[str, Any] | None = None
        self._elapsed_before = 0.0  # training seconds of earlier attempts

    def _fine_tuned(self, inputs: TrainInputs, ranks: Ranks) -> tuple[str | None, list[nn.Module]]:
        """For a job with init_from: the model's classifier head, with the initial weights
        loaded unless the run resumes (its snapshot has its weights), and the batch norms of a
        frozen backbone, which train_mode keeps in eval mode. (None, []) for other jobs."""
        config = inputs.config
        if config.init_from is None:
            return None, []
        head = head_of(self.model, config.model)
        if inputs.resume is None:
            initial = inputs.initial_weights
            if initial is None:
                raise ValueError("a job with init_from starts from its initial weights")
            replaced = load_initial_weights(self.model, config.model, initial, inputs.classes)
            if ranks.leader:
                fresh = f"; its classifier head ({head}) starts afresh" if replaced else ""
                log.info("starting from %s%s", initial.source, fresh)
        if config.freeze == "backbone":
            # Frozen before DistributedDataParallel wraps the model: it leaves out, once and
            # for all, the parameters that need no gradient.
            return head, freeze_backbone(self.model, head)
        return head, []

    def train_mode(self) -> None:
        """The model in training mode; a frozen backbone's batch norms stay in eval mode, so
        that they normalise with, and keep, the running statistics they came with."""
        self.model.train()
        for norm in self.frozen_norms:
            norm.eval()

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Continue from `snapshot` (made by `snapshot` on the same data): weights, optimizer,
        schedule, random state, position and history as they were."""
        if (
            snapshot["train_size"] != self.size
            or snapshot["steps_per_epoch"] != self.steps_per_epoch
        ):
            raise ValueError("the checkpoint was made with other data; it cannot be resumed")
        device = self.runtime.device
        self.model.load_state_dict(snapshot["model"])
        # A copy: on the CPU the optimizer would otherwise train in the snapshot's own tensors,
        # which the ranks of a data-parallel job share through shared memory.
        self.optimizer.load_state_dict(copy.deepcopy(snapshot["optimizer"]))
        if self.schedule is not None:
            self.schedule.load_state_dict(snapshot["lr_schedule"])
        if self.lookahead is not None:
            self.lookahead.restore(snapshot["lookahead"])
        self._scaler_state = snapshot.get("grad_scaler")
        self._elapsed_before = snapshot.get("elapsed_s", 0.0)
        restore_rng_states(snapshot["rng"], self.shuffle)
        self.at = Position(epoch=snapshot["epoch"], step=snapshot["step"])
        self.loss_history, self.epoch_history = snapshot_history(snapshot)
        self.early_stopping.restore(snapshot.get("early_stopping"))
        if self.at.step == self.steps_per_epoch:  # that epoch was finished and evaluated
            self.at = Position(epoch=self.at.epoch + 1, step=0)
        else:
            self.order = snapshot["order"].to(device)
            plan = AugmentPlan.from_state(snapshot.get("augment"))
            self.augment = None if plan is None else plan.to(device)
            self.loss_sums[0] = snapshot["window_loss"].to(device)
            self.loss_sums[1] = snapshot["epoch_loss"].to(device)

    def mean_loss_sums(self) -> torch.Tensor:
        """The loss sums averaged over the ranks, on the CPU (all ranks call this together)."""
        return self.ranks.mean(self.loss_sums).cpu()

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to continue from here (all ranks call this together)."""
        sums = self.mean_loss_sums()
        no_order = torch.empty(0, dtype=torch.long)
        return {
            "format": SNAPSHOT_FORMAT,
            "epoch": self.at.epoch,
            "step": self.at.step,
            "train_size": self.size,
            "steps_per_epoch": self.steps_per_epoch,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "lr_schedule": None if self.schedule is None else self.schedule.state_dict(),
            "grad_scaler": None if self.scaler is None else self.scaler.state_dict(),
            "lookahead": None if self.lookahead is None else self.lookahead.state(),
            "rng": rng_states(self.shuffle),
            "order": no_order if self.order is None else self.order.cpu(),
            "augment": None if self.augment is None else self.augment.state(),
            "window_loss": sums[0],
            "epoch_loss": sums[1],
            # Plain dicts: a checkpoint loads with weights_only=True.
            "loss_history": [point.model_dump() for point in self.loss_history],
            "epochs": [epoch.model_dump() for epoch in self.epoch_history],
            "elapsed_s": self.elapsed_s(),
            "early_stopping": self.early_stopping.state(),
        }

    def elapsed_s(self) -> float:
        return self._elapsed_before + time.monotonic() - self._started

    def make_step(self) -> TrainStep | GraphedStep:
        """The training step, made after any restore: a CUDA graph captures the state it sees,
        and the mode it trains in (a frozen backbone's batch norms in eval mode)."""
        config = self.config
        self.train_mode()
        # Ranks sum their share's losses; `batch` says how to scale the sum (see there).
        reduction = "mean" if self.ranks.size == 1 else "sum"
        criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing, reduction=reduction)
        step = TrainStep(
            self.model, self.optimizer, criterion, self.runtime, self.loss_sums, self.wrapped
        )
        self.scaler = step.scaler
        if self.scaler is not None and self._scaler_state:
            self.scaler.load_state_dict(self._scaler_state)
        if not self.runtime.cuda_graphs:
            return step
        batch_shape = (self.batch_size, *self.train_data.images.shape[1:])
        try:
            return GraphedStep(step, batch_shape, capture=self.runtime.device.type == "cuda")
        except Exception:
            if config.cuda_graphs != "auto":
                raise
            log.warning("capturing the training step failed; training eagerly", exc_info=True)
            return step

    def start_epoch(self) -> None:
        """Draws the epoch's batch order and augmentations, unless resumed inside the epoch."""
        if self.order is not None:
            return
        device, config = self.runtime.device, self.config
        self.order = torch.randperm(self.size, generator=self.shuffle).to(device)
        alternating = None
        if config.random_flip and config.alternating_flip:
            alternating = AlternatingFlips(self.size, config.seed, self.at.epoch)
        plan = AugmentPlan.draw(
            self.size,
            self.shuffle,
            flip=config.random_flip,
            padding=config.random_crop_padding,
            alternating=alternating,
        )
        self.augment = None if plan is None else plan.to(device)

    def batch(self) -> tuple[torch.Tensor, torch.Tensor, float | None]:
        """This rank's images (normalised, augmented, in the runtime's layout) and labels of
        this step, and the scale of its summed loss (None: one process, a mean loss).

        A rank's loss is its share's summed loss times ranks / batch: averaged over the ranks,
        as DistributedDataParallel averages gradients, that is the whole batch's mean loss,
        however unevenly the last batch divides.
        """
        assert self.order is not None
        size = self.batch_size
        batch_indices = self.order[self.at.step * size : (self.at.step + 1) * size]
        indices = self.ranks.shard(batch_indices)
        images = normalize(self.train_data.images[indices])
        if self.augment is not None:
            images = self.augment.apply(images, indices)
        scale = None if self.ranks.size == 1 else self.ranks.size / len(batch_indices)
        return (
            images.contiguous(memory_format=self.runtime.memory_format),
            self.train_data.labels[indices],
            scale,
        )

    def end_epoch(self) -> None:
        self.at = Position(epoch=self.at.epoch + 1, step=0)
        self.order, self.augment = None, None
        self.loss_sums.zero_()
