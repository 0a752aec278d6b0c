"""Loss, accuracy, per-class accuracy and confusion matrix of a model on a whole image set."""

from dataclasses import dataclass

import torch
from torch import nn

from app.ml.images import ImageSet, normalize

EVAL_BATCH_SIZE = 1000


@dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float
    per_class_accuracy: dict[str, float]
    confusion_matrix: list[list[int]]


def evaluate(model: nn.Module, data: ImageSet, classes: list[str]) -> Evaluation:
    """Mean loss, accuracy, per-class accuracy and confusion matrix on a whole set."""
    num_classes = len(classes)
    model.eval()
    loss_sum = torch.zeros((), device=data.images.device)
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.long, device=data.images.device)
    with torch.no_grad():
        for start in range(0, len(data), EVAL_BATCH_SIZE):
            images = normalize(data.images[start : start + EVAL_BATCH_SIZE])
            labels = data.labels[start : start + EVAL_BATCH_SIZE]
            logits = model(images)
            loss_sum += nn.functional.cross_entropy(logits, labels, reduction="sum")
            predicted = logits.argmax(dim=1)
            confusion += torch.bincount(labels * num_classes + predicted, minlength=num_classes**2)
    matrix = confusion.view(num_classes, num_classes).cpu()
    per_class_totals = matrix.sum(dim=1)
    correct = matrix.diagonal()
    return Evaluation(
        loss=loss_sum.item() / len(data),
        accuracy=correct.sum().item() / len(data),
        per_class_accuracy={
            name: (correct[i].item() / per_class_totals[i].item()) if per_class_totals[i] else 0.0
            for i, name in enumerate(classes)
        },
        confusion_matrix=matrix.tolist(),
    )
