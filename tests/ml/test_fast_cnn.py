"""fast_cnn: the sizes it takes, a whitening layer that really whitens the training patches, and
an eval mode that averages each image with its mirror (exports: tests/e2e/test_architectures.py)."""

import pytest
import torch
import torch.nn.functional as F

from app.errors import InvalidInput
from app.jobs.architectures import check_fits
from app.ml.architectures import architecture
from app.ml.fast_cnn import FAST_CNN_MIN_PX, FastCNN
from app.ml.images import NORMALIZE_MEAN, NORMALIZE_STD, normalize
from app.ml.nets import build_model
from app.ml.torchvision_nets import InputSizes
from app.ml.whitening import (
    PAPER_WHITEN_EPS,
    WHITEN_EPS,
    initialise_from_data,
    patch_moments,
    patches,
    spread_indices,
    whitening_filters,
)
from tests.conftest import job_config


def correlated_images(count: int, seed: int) -> torch.Tensor:
    """uint8 images whose neighbouring pixels and colour channels are strongly correlated, as in
    photographs: smooth shapes, one brightness shared by the channels, a little noise."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 1, 8, 8, generator=generator)
    smooth = F.interpolate(coarse, size=32, mode="bilinear", align_corners=False)
    tint = torch.rand(count, 3, 1, 1, generator=generator) * 0.3
    noise = torch.rand(count, 3, 32, 32, generator=generator) * 0.3
    return ((smooth * 0.6 + tint + noise) * 200).clamp(0, 255).to(torch.uint8)


def test_fast_cnn_takes_9_pixels_and_up() -> None:
    assert architecture("fast_cnn").sizes == InputSizes(FAST_CNN_MIN_PX) == InputSizes(9)
    for size in (9, 32, 40):
        model = build_model("fast_cnn", 7, image_size=size)
        assert model(torch.randn(2, 3, size, size)).shape == (2, 7)
    with pytest.raises(ValueError, match="fast_cnn takes images of at least 9 pixels, not 8"):
        build_model("fast_cnn", 10, image_size=8)
    with pytest.raises(InvalidInput) as refused:
        check_fits(job_config(model="fast_cnn", batch_size=8), "ds-1", 8)
    assert refused.value.message == (
        "model: fast_cnn takes images of at least 9 pixels; dataset ds-1 has 8x8 images"
    )


def test_patches_are_laid_out_as_unfold_lays_them_out() -> None:
    images = torch.randn(3, 3, 7, 6)
    assert torch.equal(patches(images, 2), F.unfold(images, 2))


def test_the_whitening_layer_whitens_the_training_patches() -> None:
    images = normalize(correlated_images(200, seed=1))
    raw = patch_moments(images, 2)
    # The raw patches are far from white: neighbours and channels move together.
    spread = raw.diagonal().sqrt()
    correlations = raw / (spread[:, None] * spread[None, :])
    assert correlations[~torch.eye(12, dtype=torch.bool)].min() > 0.4
    model = FastCNN()
    model.set_whitening(whitening_filters(images, 2))
    # The first 12 filters whiten (the other 12 are their negatives).
    whitened = F.conv2d(images, model.whiten.weight[:12])
    values = whitened.transpose(0, 1).reshape(12, -1).double()
    moments = values @ values.T / values.shape[1]
    # Exactly white but for the eps added to each eigenvalue, which matters for small ones only.
    eigenvalues = torch.linalg.eigvalsh(raw).flip(0)
    expected = torch.diag(eigenvalues / (eigenvalues + WHITEN_EPS))
    torch.testing.assert_close(moments, expected, rtol=0, atol=1e-4)
    torch.testing.assert_close(moments, torch.eye(12, dtype=torch.float64), rtol=0, atol=0.03)
    torch.testing.assert_close(model.whiten.weight[12:], -model.whiten.weight[:12])
    assert not model.whiten.weight.requires_grad and model.whiten.bias is not None
    assert torch.equal(model.whiten.bias, torch.zeros(24))


def test_whiten_eps_is_the_papers_for_pixels_normalised_by_cifars_std() -> None:
    # The paper normalises by CIFAR-10's std (about 0.25), this service by NORMALIZE_STD: its
    # eps must scale with the square of their ratio, so both give the same whitened patches.
    assert NORMALIZE_STD == (0.5, 0.5, 0.5)
    assert abs(WHITEN_EPS - 1.25e-4) < 1e-16
    images = correlated_images(100, seed=2)
    ours = whitening_filters(images, 2)
    cifar_normalised = (images.float() / 255 - NORMALIZE_MEAN[0]) / 0.25
    eigenvalues, eigenvectors = torch.linalg.eigh(patch_moments(cifar_normalised, 2))
    papers = eigenvectors.T.flip(0) / torch.sqrt(eigenvalues.flip(0) + PAPER_WHITEN_EPS)[:, None]
    papers_out = F.conv2d(cifar_normalised.double(), papers.view(12, 3, 2, 2))
    ours_out = F.conv2d(normalize(images).double(), ours.double())
    # Eigenvectors are defined up to their sign.
    signs = torch.sign((papers_out * ours_out).sum(dim=(0, 2, 3))).view(1, -1, 1, 1)
    torch.testing.assert_close(ours_out, papers_out * signs, rtol=0, atol=1e-3)


def test_the_whitening_sample_is_spread_evenly_over_the_training_set() -> None:
    # 9,999 images listed class by class: the first 5,000 would hold five classes of ten.
    labels = torch.arange(9999) * 10 // 9999
    picked = spread_indices(9999, 5000)
    assert len(picked) == len(set(picked.tolist())) == 5000
    assert picked[0] == 0 and picked[-1] == 9998
    assert torch.bincount(labels[picked]).tolist() == [500] * 10
    assert spread_indices(20, 6).tolist() == [0, 4, 8, 11, 15, 19]
    assert spread_indices(4, 6).tolist() == [0, 1, 2, 3]


def test_the_worker_whitens_from_the_spread_sample() -> None:
    images = correlated_images(20, seed=3)
    model, expected = FastCNN(), FastCNN()
    initialise_from_data(model, images)  # all 20
    expected.set_whitening(whitening_filters(images, 2))
    assert torch.equal(model.whiten.weight, expected.whiten.weight)
    initialise_from_data(model, images, sample=6)
    expected.set_whitening(whitening_filters(images[[0, 4, 8, 11, 15, 19]], 2))
    assert torch.equal(model.whiten.weight, expected.whiten.weight)
    tutorial = build_model("tutorial_cnn", 10)
    before = {name: value.clone() for name, value in tutorial.state_dict().items()}
    initialise_from_data(tutorial, images)  # nothing to take from the data
    assert all(torch.equal(value, before[name]) for name, value in tutorial.state_dict().items())


def test_patch_moments_take_uint8_images_a_chunk_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    images = correlated_images(7, seed=5)
    whole = patch_moments(images, 2)
    torch.testing.assert_close(whole, patch_moments(normalize(images), 2), rtol=0, atol=0)
    # 961 patches an image: chunks of 2 images, the last one of 1.
    monkeypatch.setattr("app.ml.whitening.WHITEN_CHUNK_PATCHES", 2 * 961 + 5)
    torch.testing.assert_close(patch_moments(images, 2), whole, rtol=1e-6, atol=1e-9)


def test_eval_mode_averages_each_image_with_its_mirror() -> None:
    torch.manual_seed(0)
    model = FastCNN(num_classes=10)
    model.set_whitening(whitening_filters(correlated_images(50, seed=4), 2))
    images = torch.randn(4, 3, 32, 32)
    model.train()
    model(images)  # running statistics of some batch, so that eval mode is not the identity
    model.eval()
    with torch.no_grad():
        expected = (model.logits(images) + model.logits(images.flip(3))) / 2
        torch.testing.assert_close(model(images), expected)
        torch.testing.assert_close(model(images.flip(3)), model(images), rtol=0, atol=1e-5)
        assert not torch.allclose(model.logits(images), model.logits(images.flip(3)))
