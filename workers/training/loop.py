"""The training loop: a config and data in, a trained model and metrics out, no database.

The loop can stop between any two steps and hand out everything needed to continue exactly where
it was (see `snapshot`), and it can start from such a snapshot.
"""

import copy
import logging
import math
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import torch
from torch import nn

from app.ml.images import ImageSet, normalize
from app.ml.nets import build_model
from workers.offer import usable_cpus
from workers.training.augment import AugmentPlan
from workers.training.early_stopping import EarlyStopping
from workers.training.evaluate import Evaluation, evaluate
from workers.training.optim import make_lr_schedule, make_optimizer
from workers.training.ranks import SINGLE, Ranks
from workers.training.rng import restore_rng_states, rng_states
from workers.training.runtime import Runtime, UnsupportedOption, resolve_runtime
from workers.training.steps import GraphedStep, TrainStep

log = logging.getLogger("trainserve.worker")

SNAPSHOT_FORMAT = 1


class StopReason(StrEnum):
    SHUTDOWN = "shutdown"  # the worker is stopping; checkpoint and hand the job back
    CANCEL = "cancel"  # the user cancelled the job
    LOST = "lost"  # the worker lost its lease; another may be running the job


class TrainingInterrupted(Exception):
    """Training stopped between two steps; `reason` says why."""

    def __init__(self, reason: StopReason, epoch: int, step: int) -> None:
        super().__init__(f"stopped ({reason}) in epoch {epoch} at step {step}")
        self.reason = reason


class TrainingDiverged(Exception):
    """The loss stopped being a finite number; the message says when."""


def _finite(value: float, what: str, epoch: int, step: int) -> float:
    if not math.isfinite(value):
        raise TrainingDiverged(
            f"training diverged: the {what} became {value} in epoch {epoch} by step {step}; "
            "try a lower learning_rate"
        )
    return value


@dataclass(frozen=True)
class TrainConfig:
    model: str = "tutorial_cnn"
    epochs: int = 2
    batch_size: int = 4
    optimizer: str = "sgd"
    learning_rate: float = 0.001
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    label_smoothing: float = 0.0
    random_flip: bool = False
    random_crop_padding: int = 0
    seed: int = 0
    log_every: int = 2000
    device: str = "auto"
    gpus: int | None = None
    cpu_processes: int | None = None
    precision: str = "auto"
    channels_last: bool | str = "auto"
    compile: bool | str = "auto"
    cuda_graphs: bool | str = "auto"
    early_stopping_patience: int | None = None
    hidden_layers: list[int] | None = None

    @classmethod
    def from_job_config(cls, config: dict[str, Any]) -> "TrainConfig":
        """The training fields of a job's resolved config."""
        names = cls.__dataclass_fields__.keys()
        return cls(**{name: config[name] for name in names if name in config})

    @property
    def processes(self) -> int:
        """How many processes train the job together (one per GPU, or CPU processes)."""
        return self.gpus or self.cpu_processes or 1

    @property
    def device_kind(self) -> str:
        """ "cpu", "cuda" or "auto", with `gpus` and `cpu_processes` taken into account."""
        if self.gpus:
            return "cuda"
        return "cpu" if self.cpu_processes else self.device


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int
    steps: int
    train_loss: float
    evaluation: Evaluation
    elapsed_s: float  # training time from the job's start to this epoch's end, over attempts
    validation: Evaluation | None = None  # on the held-out training images, when there are some

    def summary(self) -> dict[str, float | int | None]:
        return {
            "epoch": self.epoch,
            "train_loss": self.train_loss,
            "test_loss": self.evaluation.loss,
            "test_accuracy": self.evaluation.accuracy,
            "elapsed_s": self.elapsed_s,
            "validation_loss": None if self.validation is None else self.validation.loss,
            "validation_accuracy": None if self.validation is None else self.validation.accuracy,
        }


@dataclass(frozen=True)
class TrainResult:
    model: nn.Module
    device: str
    final: Evaluation
    best_epoch: int | None = None  # early stopping: the epoch whose weights `model` has


class TrainingHooks(Protocol):
    """How the loop reports progress and asks about stopping; the worker stores it."""

    def started(self, device: str, classes: list[str], steps_per_epoch: int) -> None: ...
    def progress(self, epoch: int, step: int) -> None: ...
    def loss_point(self, epoch: int, step: int, loss: float) -> None: ...
    def epoch_done(self, metrics: EpochMetrics) -> None: ...
    def stop_reason(self) -> StopReason | None: ...
    def checkpoint_due(self) -> bool: ...
    def save_checkpoint(self, snapshot: dict[str, Any], epoch: int, step: int) -> None: ...


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


def runtime_for(config: TrainConfig, ranks: Ranks = SINGLE) -> Runtime:
    """The device and speed options the job trains with on this worker (in rank `ranks.rank`)."""
    device = resolve_device(config.device_kind, ranks)
    return resolve_runtime(
        device,
        batch_size=math.ceil(config.batch_size / ranks.size),
        processes=ranks.size,
        lr_schedule=config.lr_schedule,
        precision=config.precision,
        # Rows of features have no channels to lay out.
        channels_last=False if config.model == "mlp" else config.channels_last,
        compile=config.compile,
        cuda_graphs=config.cuda_graphs,
        bf16_supported=device.type == "cuda" and torch.cuda.is_bf16_supported(),
    )


@dataclass
class _Position:
    """Where the loop is: `step` mini-batches of `epoch` are done."""

    epoch: int
    step: int


class _Run:
    """The state of one training run, which a snapshot captures and a resume restores."""

    def __init__(
        self,
        config: TrainConfig,
        runtime: Runtime,
        train_set: ImageSet,
        test_set: ImageSet,
        num_classes: int,
        ranks: Ranks = SINGLE,
        validation_set: ImageSet | None = None,
    ) -> None:
        self.config, self.runtime, device = config, runtime, runtime.device
        self.ranks = ranks
        # Every rank draws the same initial weights, batch order and augmentations.
        torch.manual_seed(config.seed)
        self.shuffle = torch.Generator().manual_seed(config.seed)
        examples = train_set.images.shape
        self.model = build_model(
            config.model,
            num_classes=num_classes,
            image_size=examples[-1],
            in_features=examples[1] if len(examples) == 2 else None,
            hidden_layers=config.hidden_layers,
        )
        self.model.to(device).to(memory_format=runtime.memory_format)
        self.wrapped: nn.Module | None = None
        if ranks.size > 1:
            # Averages the ranks' gradients during backward; the ranks' losses are scaled so
            # that this average is the gradient of the whole batch's mean loss.
            self.wrapped = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None
            )
        self.optimizer = make_optimizer(config, self.model, capturable=runtime.cuda_graphs)
        self.train_data, self.test_data = train_set.to(device), test_set.to(device)
        self.validation_data = None if validation_set is None else validation_set.to(device)
        self.early_stopping = EarlyStopping(config.early_stopping_patience)
        self.size = len(self.train_data)
        self.steps_per_epoch = math.ceil(self.size / config.batch_size)
        self.schedule = make_lr_schedule(
            config, self.optimizer, total_steps=config.epochs * self.steps_per_epoch
        )
        self.at = _Position(epoch=1, step=0)
        self.order: torch.Tensor | None = None
        self.augment: AugmentPlan | None = None
        # [loss since the last loss point, loss this epoch]; stays on the device between reads
        self.loss_sums = torch.zeros(2, device=device)
        self.loss_history: list[dict[str, float | int]] = []
        self.epoch_history: list[dict[str, float | int | None]] = []
        self.scaler: torch.amp.GradScaler | None = None
        self._scaler_state: dict[str, Any] | None = None
        self._elapsed_before = 0.0  # training seconds of earlier attempts
        self._started = time.monotonic()

    def restore(self, snapshot: dict[str, Any]) -> None:
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
        self._scaler_state = snapshot.get("grad_scaler")
        self._elapsed_before = snapshot.get("elapsed_s", 0.0)
        restore_rng_states(snapshot["rng"], self.shuffle)
        self.at = _Position(epoch=snapshot["epoch"], step=snapshot["step"])
        self.loss_history = list(snapshot["loss_history"])
        self.epoch_history = list(snapshot["epochs"])
        self.early_stopping.restore(snapshot.get("early_stopping"))
        if self.at.step == self.steps_per_epoch:  # that epoch was finished and evaluated
            self.at = _Position(epoch=self.at.epoch + 1, step=0)
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
            "rng": rng_states(self.shuffle),
            "order": no_order if self.order is None else self.order.cpu(),
            "augment": None if self.augment is None else self.augment.state(),
            "window_loss": sums[0],
            "epoch_loss": sums[1],
            "loss_history": self.loss_history,
            "epochs": self.epoch_history,
            "elapsed_s": self.elapsed_s(),
            "early_stopping": self.early_stopping.state(),
        }

    def elapsed_s(self) -> float:
        return self._elapsed_before + time.monotonic() - self._started

    def make_step(self) -> TrainStep | GraphedStep:
        """The training step, made after any restore: a CUDA graph captures the state it sees."""
        config = self.config
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
        batch_shape = (config.batch_size, *self.train_data.images.shape[1:])
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
        plan = AugmentPlan.draw(
            self.size,
            self.shuffle,
            flip=config.random_flip,
            padding=config.random_crop_padding,
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
        size = self.config.batch_size
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
        self.at = _Position(epoch=self.at.epoch + 1, step=0)
        self.order, self.augment = None, None
        self.loss_sums.zero_()


def train(
    config: TrainConfig,
    train_set: ImageSet,
    test_set: ImageSet,
    classes: list[str],
    hooks: TrainingHooks,
    resume: dict[str, Any] | None = None,
    ranks: Ranks = SINGLE,
    validation_set: ImageSet | None = None,
) -> TrainResult:
    """Train config.model on train_set, evaluating on test_set (and validation_set, which early
    stopping watches) after every epoch.

    With `resume` (a snapshot the loop handed to `hooks.save_checkpoint`), training continues
    from that exact point: same weights, optimizer state, batch order, random state and history.
    With several `ranks` this is rank 0, which evaluates and reports; the others run
    `train_follower` in their own processes at the same time.
    """
    assert ranks.leader
    run, evaluation = _train(
        config, train_set, test_set, classes, hooks, resume, ranks, validation_set
    )
    assert evaluation is not None
    return TrainResult(
        model=run.model,
        device=str(run.runtime.device),
        final=evaluation,
        best_epoch=run.early_stopping.best_epoch,
    )


def train_follower(
    config: TrainConfig,
    train_set: ImageSet,
    test_set: ImageSet,
    classes: list[str],
    hooks: TrainingHooks,
    resume: dict[str, Any] | None,
    ranks: Ranks,
) -> None:
    """Train as a rank other than 0 beside the leader's `train`; `hooks` share its decisions."""
    assert not ranks.leader
    _train(config, train_set, test_set, classes, hooks, resume, ranks)


def _train(
    config: TrainConfig,
    train_set: ImageSet,
    test_set: ImageSet,
    classes: list[str],
    hooks: TrainingHooks,
    resume: dict[str, Any] | None,
    ranks: Ranks,
    validation_set: ImageSet | None = None,
) -> tuple[_Run, Evaluation | None]:
    runtime = runtime_for(config, ranks)
    with runtime.applied():
        run = _Run(config, runtime, train_set, test_set, len(classes), ranks, validation_set)
        if resume is not None:
            run.restore(resume)
        step = run.make_step()
        if ranks.leader:
            log.info("training on %s", runtime.describe())
        hooks.started(str(runtime.device), classes, run.steps_per_epoch)
        evaluation = _train_epochs(run, step, classes, hooks)
    run.model.to(memory_format=torch.contiguous_format)
    return run, evaluation


def _train_epochs(
    run: _Run, step: TrainStep | GraphedStep, classes: list[str], hooks: TrainingHooks
) -> Evaluation | None:
    """The epochs; the test-set evaluation of the last (None outside rank 0)."""
    config, leader = run.config, run.ranks.leader
    evaluation: Evaluation | None = None
    while run.at.epoch <= config.epochs and not run.early_stopping.stopped:
        at = run.at
        run.model.train()
        run.start_epoch()
        while at.step < run.steps_per_epoch:
            step(*run.batch())
            if run.schedule is not None:
                run.schedule.step()
            at.step += 1
            if at.step % config.log_every == 0:
                window = run.mean_loss_sums()[0].item() / config.log_every
                mean = _finite(window, "loss", at.epoch, at.step)
                run.loss_sums[0] = 0.0
                run.loss_history.append({"epoch": at.epoch, "step": at.step, "loss": mean})
                hooks.loss_point(at.epoch, at.step, mean)
            else:
                hooks.progress(at.epoch, at.step)
            reason = hooks.stop_reason()
            if reason is not None:
                if reason is StopReason.SHUTDOWN:
                    hooks.save_checkpoint(run.snapshot(), at.epoch, at.step)
                raise TrainingInterrupted(reason, at.epoch, at.step)
            if at.step < run.steps_per_epoch and hooks.checkpoint_due():
                hooks.save_checkpoint(run.snapshot(), at.epoch, at.step)

        epoch_loss = run.mean_loss_sums()[1].item() / run.steps_per_epoch
        train_loss = _finite(epoch_loss, "loss", at.epoch, at.step)
        if leader:
            evaluation = evaluate(run.model, run.test_data, classes)
            _finite(evaluation.loss, "test loss", at.epoch, at.step)
            validation = None
            if run.validation_data is not None:
                validation = evaluate(run.model, run.validation_data, classes)
                _finite(validation.loss, "validation loss", at.epoch, at.step)
                run.early_stopping.observe(at.epoch, validation.loss, run.model)
            metrics = EpochMetrics(
                at.epoch,
                run.steps_per_epoch,
                train_loss,
                evaluation,
                elapsed_s=run.elapsed_s(),
                validation=validation,
            )
            run.epoch_history.append(metrics.summary())
            hooks.epoch_done(metrics)
        hooks.save_checkpoint(run.snapshot(), at.epoch, at.step)
        run.end_epoch()

    if run.early_stopping.restore_best(run.model):
        evaluation = None  # the test results must be the kept weights'
    if evaluation is None and leader:  # or resumed after the last epoch had already finished
        evaluation = evaluate(run.model, run.test_data, classes)
    return evaluation
