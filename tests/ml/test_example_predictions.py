"""A model's predictions for every test example: stored and read back exactly, and its
mistakes ranked most confident first."""

from pathlib import Path

import pytest
import torch

from app.ml.example_predictions import (
    ExamplePredictions,
    load_example_predictions,
    rank_mistakes,
    save_example_predictions,
)


def predictions() -> ExamplePredictions:
    return ExamplePredictions(
        index=torch.tensor([0, 2, 4, 6, 8, 10, 12]),
        true=torch.tensor([0, 0, 1, 1, 2, 2, 2]),
        predicted=torch.tensor([1, 0, 0, 2, 1, 1, 0]),
        confidence=torch.tensor([0.5, 0.9, 0.7, 0.6, 0.8, 0.5, 0.95]),
    )


def test_they_are_stored_and_read_back_exactly(tmp_path: Path) -> None:
    path = tmp_path / "jobs" / "1" / "test-predictions-attempt1.pt"
    stored = predictions()
    sha256 = save_example_predictions(path, stored)
    assert len(sha256) == 64
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left
    loaded = load_example_predictions(path)
    assert len(loaded) == 7
    for name in ("index", "true", "predicted", "confidence"):
        assert torch.equal(getattr(loaded, name), getattr(stored, name)), name
    assert (loaded.index.dtype, loaded.confidence.dtype) == (torch.int64, torch.float32)


def test_mistakes_come_most_confident_first_in_test_order_for_ties() -> None:
    ranked = predictions()
    # Wrong: rows 0 (0.5), 2 (0.7), 3 (0.6), 4 (0.8), 5 (0.5), 6 (0.95); row 1 is right.
    assert rank_mistakes(ranked).tolist() == [6, 4, 2, 3, 0, 5]
    assert rank_mistakes(ranked, true=2).tolist() == [6, 4, 5]
    assert rank_mistakes(ranked, predicted=1).tolist() == [4, 0, 5]
    assert rank_mistakes(ranked, true=2, predicted=1).tolist() == [4, 5]
    assert rank_mistakes(ranked, true=0, predicted=0).tolist() == []  # right answers


def test_the_four_tensors_must_line_up() -> None:
    with pytest.raises(ValueError, match="four tensors of one length"):
        ExamplePredictions(
            index=torch.arange(3),
            true=torch.zeros(3, dtype=torch.long),
            predicted=torch.zeros(2, dtype=torch.long),
            confidence=torch.ones(3),
        )
