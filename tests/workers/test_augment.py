"""Flips and shifts on whole batches equal the same augmentation done one image at a time."""

import torch
import torch.nn.functional as F

from workers.training.augment import AugmentPlan, shifted


def images(count: int) -> torch.Tensor:
    return torch.randn(count, 3, 32, 32, generator=torch.Generator().manual_seed(5))


def test_a_shift_is_a_crop_of_the_reflect_padded_image() -> None:
    batch = images(6)
    offsets = torch.tensor([[0, 0], [4, 4], [2, 2], [0, 4], [3, 1], [1, 3]])
    result = shifted(batch, offsets, padding=2)
    for image, (row, col), got in zip(batch, offsets.tolist(), result, strict=True):
        padded = F.pad(image[None], (2, 2, 2, 2), mode="reflect")[0]
        assert torch.equal(got, padded[:, row : row + 32, col : col + 32])
    assert torch.equal(result[2], batch[2])  # offset (2, 2) with padding 2 is no shift


def test_a_plan_flips_and_shifts_the_images_it_drew_for() -> None:
    generator = torch.Generator().manual_seed(0)
    plan = AugmentPlan.draw(10, generator, flip=True, padding=3)
    assert plan is not None and plan.flip is not None and plan.shift is not None
    assert plan.shift.min() >= 0 and plan.shift.max() <= 6
    indices = torch.tensor([7, 2, 9])
    batch = images(3)
    result = plan.apply(batch, indices)
    for got, image, index in zip(result, batch, indices.tolist(), strict=True):
        expected = image.flip(2) if plan.flip[index] else image
        expected = shifted(expected[None], plan.shift[index][None], 3)[0]
        assert torch.equal(got, expected)


def test_the_same_seed_draws_the_same_plan_and_nothing_is_drawn_without_augmentation() -> None:
    def draw(seed: int) -> AugmentPlan | None:
        return AugmentPlan.draw(100, torch.Generator().manual_seed(seed), flip=True, padding=2)

    first, again, other = draw(1), draw(1), draw(2)
    assert first is not None and again is not None and other is not None
    assert first.flip is not None and again.flip is not None and other.flip is not None
    assert torch.equal(first.flip, again.flip) and not torch.equal(first.flip, other.flip)
    generator = torch.Generator().manual_seed(1)
    state = generator.get_state()
    assert AugmentPlan.draw(100, generator, flip=False, padding=0) is None
    assert torch.equal(generator.get_state(), state)  # the shuffle stream is left as it was


def test_a_plan_survives_its_saved_state() -> None:
    plan = AugmentPlan.draw(50, torch.Generator().manual_seed(3), flip=True, padding=2)
    assert plan is not None
    restored = AugmentPlan.from_state(plan.state())
    assert restored is not None and restored.padding == 2
    assert restored.flip is not None and plan.flip is not None
    assert torch.equal(restored.flip, plan.flip)
    assert AugmentPlan.from_state(None) is None
