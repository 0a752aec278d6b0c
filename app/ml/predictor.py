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


# Larger images are refused from their header, before anything is decoded: a photo of 50
# megapixels is about 150 MB decoded.
MAX_PIXELS = 50_000_000


@dataclass(frozen=True)
class DecodedImage:
    pixels: torch.Tensor  # uint8 (3, H, W) at the model's size
    original_size: tuple[int, int]  # (width, height) as uploaded


def decode_image(data: bytes, size: tuple[int, int], *, resize: bool = False) -> DecodedImage:
    """Bytes of an accepted image to uint8 (3, H, W) at `size` (height, width): resized as
    uploaded datasets are for training (RGB, bilinear, to exactly that size) when `resize`,
    refused when it is another size otherwise.

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
    if image.width * image.height > MAX_PIXELS:
        raise ImageRejected(
            f"the image is {image.width}x{image.height} pixels; at most {MAX_PIXELS:,} pixels "
            "are decoded"
        )
    if image.size != (width, height) and not resize:
        raise ImageRejected(
            f"the image is {image.width}x{image.height} pixels; this model takes {width}x{height} "
            "(leave out resize=false to have it resized)"
        )
    try:
        image.load()
    except Exception:
        raise ImageRejected("the image data is truncated or corrupt") from None
    rgb = to_model_size(image.convert("RGB"), width, height)  # grayscale, palette, RGBA...
    pixels = torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1)
    return DecodedImage(pixels, image.size)


def to_model_size(rgb: Image.Image, width: int, height: int) -> Image.Image:
    """An RGB image at the model's size, resized as training images are (bilinear, to exactly
    that size)."""
    if rgb.size == (width, height):
        return rgb
    return rgb.resize((width, height), Image.Resampling.BILINEAR)


@dataclass(frozen=True)
class Prediction:
    class_index: int
    label: str
    probabilities: dict[str, float]
    original_size: tuple[int, int] | None = None  # an uploaded image's (width, height)


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
