"""What every comparison server does with an image: decode the PNG, one forward pass of the
trained model, the answer as JSON (the label and every class's probability)."""

import io
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.ml.checkpoints import SavedModel, load_model
from app.ml.images import normalize


def load(path: str) -> SavedModel:
    """The trained model, in eval mode, on one torch thread (as the API runs it)."""
    torch.set_num_threads(1)
    saved = load_model(Path(path))
    saved.model.eval()
    return saved


def pixels(png: bytes) -> torch.Tensor:
    """uint8 (3, H, W)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)


def classify(saved: SavedModel, batch: torch.Tensor) -> list[dict[str, object]]:
    """One forward pass over uint8 (N, 3, H, W); each image's answer."""
    with torch.inference_mode():
        probabilities = torch.softmax(saved.model(normalize(batch)), dim=1)
    answers: list[dict[str, object]] = []
    for row in probabilities.tolist():
        best = max(range(len(row)), key=row.__getitem__)
        answers.append(
            {
                "label": saved.classes[best],
                "class_index": best,
                "probabilities": dict(zip(saved.classes, row, strict=True)),
            }
        )
    return answers
