"""Turning uploaded image bytes into class probabilities with a saved model."""

import io
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from app.ml.checkpoints import SavedModel, load_model
from app.ml.images import normalize
from app.ml.standardizer import Standardizer

# Only these decoders are ever run on uploads; Pillow's others (PSD, EPS, ICO, ...) are not.
ACCEPTED_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")


class ImageRejected(Exception):
    """The upload is not an image this model can take; the message says why."""


def decode_image(data: bytes, size: tuple[int, int]) -> torch.Tensor:
    """Bytes of an accepted image of exactly `size` (height, width) to uint8 (3, H, W).

    The pixel size is read from the header and checked before anything is decoded; Pillow's own
    decompression-bomb limit stays on. Animated images give their first frame.
    """
    if not data:
        raise ImageRejected("the file is empty")
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        raise ImageRejected(
            f"the file is not an image in a format we read ({', '.join(ACCEPTED_FORMATS)})"
        ) from None
    except Image.DecompressionBombError as exc:
        raise ImageRejected(f"the image is far too large to decode ({exc})") from None
    except Exception as exc:
        raise ImageRejected(f"the image header could not be read: {exc}") from None
    height, width = size
    # The size comes from the header, so a wrong-sized image is refused before it is decoded.
    if image.size != (width, height):
        raise ImageRejected(
            f"the image is {image.width}x{image.height} pixels; this model takes {width}x{height}"
        )
    try:
        image.load()
    except Exception:
        raise ImageRejected("the image data is truncated or corrupt") from None
    rgb = image.convert("RGB")  # grayscale, palette, RGBA and CMYK all become RGB
    return torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1)


@dataclass(frozen=True)
class Prediction:
    class_index: int
    label: str
    probabilities: dict[str, float]


class Predictor:
    """A loaded model in eval mode that classifies uint8 image tensors."""

    def __init__(self, saved: SavedModel) -> None:
        self.saved = saved
        self.device = next(saved.model.parameters()).device  # looked up once, not per batch

    @classmethod
    def from_bytes(cls, data: bytes, device: torch.device | str = "cpu") -> "Predictor":
        return cls(load_model(io.BytesIO(data), device))

    @property
    def image_size(self) -> tuple[int, int]:
        return self.saved.image_size

    @property
    def classes(self) -> list[str]:
        return self.saved.classes

    @property
    def standardizer(self) -> Standardizer | None:
        """A table model's feature columns and their statistics; None for an image model."""
        return self.saved.standardizer

    def predict(self, images: torch.Tensor) -> list[Prediction]:
        """Class probabilities for a uint8 batch (N, 3, H, W), preprocessed as in training."""
        with torch.inference_mode():
            logits = self.saved.model(normalize(images.to(self.device)))
            probabilities = torch.softmax(logits, dim=1).cpu()
        results = []
        for row in probabilities.tolist():
            best = max(range(len(row)), key=row.__getitem__)
            results.append(
                Prediction(
                    class_index=best,
                    label=self.classes[best],
                    probabilities=dict(zip(self.classes, row, strict=True)),
                )
            )
        return results
