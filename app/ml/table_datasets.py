"""A tabular dataset prepared once: split, standardised with the training split's statistics."""

from dataclasses import dataclass
from pathlib import Path

import torch

from app.ml.checkpoints import atomic_torch_save
from app.ml.csv_tables import read_table
from app.ml.images import ImageSet, class_counts, stratified_split
from app.ml.standardizer import Standardizer, standardization


@dataclass(frozen=True)
class TableDataset:
    # Features as float32 (N, F), already standardised; ImageSet holds any tensor of examples.
    train: ImageSet
    test: ImageSet
    classes: list[str]
    standardizer: Standardizer

    def counts(self) -> dict[str, dict[str, int]]:
        return class_counts(self.train, self.test, self.classes)


def prepare_table(
    path: Path, *, target: str, drop: list[str], test_fraction: float, seed: int
) -> TableDataset:
    """Read the CSV, hold out a stratified test split, standardise with the training split."""
    table = read_table(path, target, drop)
    kept, held = stratified_split(table.labels, test_fraction, seed)
    mean, std = standardization(table.features[kept])
    standardizer = Standardizer(table.feature_columns, mean, std)
    standardized = standardizer.apply(table.features)
    return TableDataset(
        train=ImageSet(standardized[kept], table.labels[kept]),
        test=ImageSet(standardized[held], table.labels[held]),
        classes=table.classes,
        standardizer=standardizer,
    )


def save_table_dataset(dataset: TableDataset, path: Path) -> None:
    atomic_torch_save(
        {
            "train_features": dataset.train.images,
            "train_labels": dataset.train.labels,
            "test_features": dataset.test.images,
            "test_labels": dataset.test.labels,
            "classes": dataset.classes,
            "standardizer": dataset.standardizer.state(),
        },
        path,
    )


def load_table_dataset(path: Path) -> TableDataset:
    payload = torch.load(path, weights_only=True)
    return TableDataset(
        train=ImageSet(payload["train_features"], payload["train_labels"]),
        test=ImageSet(payload["test_features"], payload["test_labels"]),
        classes=list(payload["classes"]),
        standardizer=Standardizer.from_state(payload["standardizer"]),
    )
