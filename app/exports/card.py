"""A model card: what a version is, where it came from, how well it does, and what it takes."""

import json

from app.ml.checkpoints import SavedModel
from app.registry.schemas import VersionOut


def model_card(version: VersionOut, saved: SavedModel) -> str:
    lineage = version.lineage
    dataset = lineage["dataset"]
    metrics = lineage["metrics"]
    config = lineage["config"]
    lines = [
        f"# {version.model} v{version.version}",
        "",
        version.description or "(no description)",
        "",
        "## Intended input",
        "",
        *_input(saved),
        "",
        "It answers each class's probability; the classes, in output order: "
        + ", ".join(f"`{name}`" for name in saved.classes)
        + ".",
        "",
        "## Results on its test set",
        "",
        f"Test accuracy: {100 * metrics['test_accuracy']:.2f}% on {lineage.get('test_images')} "
        f"test images of the dataset `{dataset['id']}`.",
        "",
        "| class | test accuracy |",
        "| --- | --- |",
        *(
            f"| {name} | {100 * accuracy:.2f}% |"
            for name, accuracy in (metrics.get("per_class_accuracy") or {}).items()
        ),
        "",
        "## Lineage",
        "",
        f"- Trained by job {lineage['job_id']}, finished {lineage.get('trained_at')}, with "
        f"trainserve {lineage.get('package_version')}.",
        f"- Dataset `{dataset['id']}` ({dataset.get('kind')}), sha256 of its files "
        f"`{dataset.get('sha256')}`.",
        f"- Weights sha256 `{lineage.get('weights_sha256')}`.",
        f"- Registered {version.created_at.isoformat()}"
        + (f"; tags {json.dumps(version.tags)}" if version.tags else "")
        + (f"; {version.promotion}" if version.promotion else "")
        + ".",
        "",
        "## Training config",
        "",
        "```json",
        json.dumps(config, indent=2, sort_keys=True),
        "```",
        "",
    ]
    return "\n".join(lines)


def _input(saved: SavedModel) -> list[str]:
    standardizer = saved.standardizer
    if standardizer is not None:
        return [
            f"Rows of a table: the raw values of {len(standardizer.columns)} feature columns in "
            "this order (the exports standardise them as in training): "
            + ", ".join(f"`{name}`" for name in standardizer.columns)
            + "."
        ]
    height, width = saved.image_size
    return [
        f"RGB images of {width}x{height} pixels, as a uint8 batch (N, {height}, {width}, 3); the "
        "exports normalise them as in training (mean 0.5, std 0.5 per channel)."
    ]
