"""Loss, accuracy, per-class accuracy and confusion matrix of a model on a whole image set, and
each example's predicted class with its probability."""

from dataclasses import dataclass, field

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
    # Each example's predicted class and that class's probability, in the set's order, left
    # on the set's device: the same predictions the confusion matrix counts. Two evaluations
    # compare by their metrics (a tensor has no one truth value).
    predicted: torch.Tensor = field(compare=False, repr=False)
    confidence: torch.Tensor = field(compare=False, repr=False)


def evaluate(model: nn.Module, data: ImageSet, classes: list[str]) -> Evaluation:
    """Mean loss, accuracy, per-class accuracy, confusion matrix and each example's prediction
    on a whole set."""
    num_classes = len(classes)
    device = data.images.device
    model.eval()
    loss_sum = torch.zeros((), device=device)
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.long, device=device)
    predicted = torch.empty(len(data), dtype=torch.long, device=device)
    confidence = torch.empty(len(data), dtype=torch.float32, device=device)
    with torch.no_grad():
        for start in range(0, len(data), EVAL_BATCH_SIZE):
            batch = slice(start, start + EVAL_BATCH_SIZE)
            logits = model(normalize(data.images[batch]))
            labels = data.labels[batch]
            loss_sum += nn.functional.cross_entropy(logits, labels, reduction="sum")
            chosen = logits.argmax(dim=1)
            probabilities = logits.float().softmax(dim=1)
            predicted[batch] = chosen
            confidence[batch] = probabilities.gather(1, chosen.unsqueeze(1)).squeeze(1)
            confusion += torch.bincount(labels * num_classes + chosen, minlength=num_classes**2)
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
        predicted=predicted,
        confidence=confidence,
    )
