import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app.ml.checkpoints import load_model, save_model
from app.ml.images import normalize
from app.ml.nets import TutorialCNN
from app.ml.predictor import ImageRejected, Predictor, decode_image

SIZE = (32, 32)


def encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def pattern(mode: str = "RGB", size: tuple[int, int] = (32, 32)) -> Image.Image:
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    return rgb if mode == "RGB" else rgb.convert(mode)


def test_rgb_png_decodes_to_its_exact_pixels() -> None:
    image = pattern()
    tensor = decode_image(encode(image, "PNG"), SIZE).pixels
    assert tensor.dtype == torch.uint8 and tensor.shape == (3, 32, 32)
    assert torch.equal(tensor, torch.from_numpy(np.array(image)).permute(2, 0, 1))


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "1", "I;16"])
def test_other_modes_become_rgb_as_pillow_converts_them(mode: str) -> None:
    image = pattern(mode)
    tensor = decode_image(encode(image, "PNG"), SIZE).pixels
    expected = np.asarray(Image.open(io.BytesIO(encode(image, "PNG"))).convert("RGB"))
    assert torch.equal(tensor, torch.from_numpy(expected.copy()).permute(2, 0, 1))


def test_cmyk_jpeg_is_accepted() -> None:
    assert decode_image(encode(pattern("CMYK"), "JPEG"), SIZE).pixels.shape == (3, 32, 32)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"hello, this is text", "not an image in a format we read"),
        (
            encode(pattern(size=(33, 32)), "PNG"),
            "the image is 33x32 pixels; this model takes 32x32",
        ),
        (encode(pattern(size=(64, 48)), "JPEG"), "the image is 64x48 pixels"),
        (encode(pattern(), "PNG")[:200], "truncated or corrupt"),
    ],
)
def test_bad_uploads_are_rejected_with_the_reason(data: bytes, message: str) -> None:
    with pytest.raises(ImageRejected, match=message):
        decode_image(data, SIZE)


def test_saved_model_round_trips_and_predicts_as_training_computes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = TutorialCNN().eval()
    classes = [f"c{i}" for i in range(10)]
    path = tmp_path / "jobs" / "1" / "model.pt"
    save_model(path, model, arch="tutorial_cnn", classes=classes, image_size=SIZE)
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temp file left behind

    predictor = Predictor(load_model(path))
    images = torch.from_numpy(np.stack([np.asarray(pattern()).transpose(2, 0, 1)] * 2))
    predictions = predictor.predict(images)

    with torch.no_grad():
        expected = torch.softmax(model(normalize(images)), dim=1)[0]
    assert predictions[0].class_index == int(expected.argmax())
    assert predictions[0].label == classes[int(expected.argmax())]
    assert list(predictions[0].probabilities) == classes
    assert list(predictions[0].probabilities.values()) == pytest.approx(expected.tolist(), abs=1e-6)
    assert predictions[0] == predictions[1]


def test_normalize_maps_pixels_to_minus_one_to_one() -> None:
    pixels = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 3, 1, 1)
    assert normalize(pixels).flatten().tolist() == pytest.approx([-1.0, -0.6, 1.0])


class _Payload:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("unpickled",))


def test_loading_refuses_arbitrary_objects(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save({"arch": "tutorial_cnn", "payload": _Payload()}, path, pickle_module=pickle)
    with pytest.raises(pickle.UnpicklingError):
        load_model(path)
