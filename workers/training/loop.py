"""The training loop: inputs in, a trained model and metrics out, no database.

The loop can stop between any two steps and hand out everything needed to continue exactly where
it was (see RunState.snapshot), and it can start from such a snapshot.
"""

import logging
import math

import torch

from app.jobs.records import LossRecord
from workers.training.devices import runtime_for
from workers.training.evaluate import Evaluation, evaluate
from workers.training.hooks import (
    EpochMetrics,
    StopReason,
    TrainingDiverged,
    TrainingHooks,
    TrainingInterrupted,
    TrainInputs,
    TrainResult,
)
from workers.training.ranks import SINGLE, Ranks
from workers.training.run_state import RunState
from workers.training.steps import GraphedStep, TrainStep

log = logging.getLogger("trainserve.worker")


def _finite(value: float, what: str, epoch: int, step: int) -> float:
    """`value`, or TrainingDiverged when it is not a finite number."""
    if not math.isfinite(value):
        raise TrainingDiverged(
            f"training diverged: the {what} became {value} in epoch {epoch} by step {step}; "
            "try a lower learning_rate"
        )
    return value


def train(inputs: TrainInputs, hooks: TrainingHooks, ranks: Ranks = SINGLE) -> TrainResult:
    """Train inputs.config.model on the training set, evaluating on the test set (and the
    validation set, which early stopping watches) after every epoch.

    With `inputs.resume` (a snapshot the loop handed to `hooks.save_checkpoint`), training
    continues from that exact point: same weights, optimizer state, batch order, random state and
    history. With several `ranks` this is rank 0, which evaluates and reports; the others run
    `train_follower` in their own processes at the same time.
    """
    assert ranks.leader
    run, evaluation = _train(inputs, hooks, ranks)
    assert evaluation is not None
    return TrainResult(
        model=run.model,
        device=str(run.runtime.device),
        final=evaluation,
        best_epoch=run.early_stopping.best_epoch,
    )


def train_follower(inputs: TrainInputs, hooks: TrainingHooks, ranks: Ranks) -> None:
    """Train as a rank other than 0 beside the leader's `train`; `hooks` share its decisions."""
    assert not ranks.leader
    _train(inputs, hooks, ranks)


def _train(
    inputs: TrainInputs, hooks: TrainingHooks, ranks: Ranks
) -> tuple[RunState, Evaluation | None]:
    runtime = runtime_for(inputs.config, inputs.batch_size, ranks)
    with runtime.applied():
        run = RunState(inputs, runtime, ranks)
        if inputs.resume is not None:
            run.restore(inputs.resume)
        step = run.make_step()
        if ranks.leader:
            log.info("training on %s", runtime.describe())
        hooks.started(str(runtime.device), inputs.classes, run.steps_per_epoch)
        evaluation = _train_epochs(run, step, inputs.classes, hooks)
    run.model.to(memory_format=torch.contiguous_format)
    return run, evaluation


def _train_epochs(
    run: RunState, step: TrainStep | GraphedStep, classes: list[str], hooks: TrainingHooks
) -> Evaluation | None:
    """The epochs; the test-set evaluation of the last (None outside rank 0)."""
    config, leader = run.config, run.ranks.leader
    log_every = config.loss_interval(run.steps_per_epoch)
    evaluation: Evaluation | None = None
    while run.at.epoch <= config.epochs and not run.early_stopping.stopped:
        at = run.at
        run.train_mode()
        run.start_epoch()
        while at.step < run.steps_per_epoch:
            step(*run.batch())
            if run.schedule is not None:
                run.schedule.step()
            at.step += 1
            if run.lookahead is not None:
                run.lookahead.after_step((at.epoch - 1) * run.steps_per_epoch + at.step)
            if at.step % log_every == 0:
                window = run.mean_loss_sums()[0].item() / log_every
                mean = _finite(window, "loss", at.epoch, at.step)
                run.loss_sums[0] = 0.0
                run.loss_history.append(LossRecord(epoch=at.epoch, step=at.step, loss=mean))
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

        if run.lookahead is not None and at.epoch == config.epochs:
            run.lookahead.finish()
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
            run.epoch_history.append(metrics.record())
            hooks.epoch_done(metrics)
        hooks.save_checkpoint(run.snapshot(), at.epoch, at.step)
        run.end_epoch()

    if run.early_stopping.restore_best(run.model):
        evaluation = None  # the test results must be the kept weights'
    if evaluation is None and leader:  # or resumed after the last epoch had already finished
        evaluation = evaluate(run.model, run.test_data, classes)
    return evaluation
