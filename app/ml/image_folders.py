"""An image-folder archive decoded once into uint8 tensors, the form training reads."""

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from app.ml.archives import ArchiveLimits, ArchiveRejected, ImageArchive, Member
from app.ml.checkpoints import atomic_torch_save
from app.ml.images import ImageSet, class_counts, stratified_split
from app.ml.predictor import ACCEPTED_FORMATS, to_model_size

MAX_NAMED_FAILURES = 10


@dataclass(frozen=True)
class ImageFolders:
    train: ImageSet
    test: ImageSet
    classes: list[str]
    image_size: int
    test_split: str  # "archive": its own test/ folders; "drawn": held out with test_fraction
    ignored: int  # junk files and folder entries skipped

    def counts(self) -> dict[str, dict[str, int]]:
        return class_counts(self.train, self.test, self.classes)


def check_decoded_size(count: int, image_size: int, limits: ArchiveLimits) -> None:
    """ArchiveRejected when the decoded images would not fit the memory a worker may give them."""
    needed = count * 3 * image_size * image_size
    if needed > limits.max_decoded_bytes:
        raise ArchiveRejected(
            f"{count} images of {image_size}x{image_size} pixels take {needed} bytes decoded; "
            f"at most {limits.max_decoded_bytes}: use a smaller image_size"
        )


def _decode(data: bytes, size: int) -> np.ndarray:
    """Image bytes to uint8 (3, size, size): RGB, resized when it is another size."""
    with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as image:
        rgb = to_model_size(image.convert("RGB"), size, size)
    return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)


def decode_archive(
    path: Path,
    *,
    image_size: int,
    test_fraction: float,
    seed: int,
    limits: ArchiveLimits | None = None,
) -> ImageFolders:
    """Every image of the archive decoded; ArchiveRejected naming the files that are not
    images, or whatever else is wrong."""
    archive = ImageArchive(path, limits or ArchiveLimits())
    layout = archive.layout()
    check_decoded_size(len(layout.members), image_size, archive.limits)
    classes = layout.classes("train")
    if len(classes) < 2:
        raise ArchiveRejected(
            f"train/ holds {len(classes)} class folder(s); a classifier needs at least 2"
        )
    unknown = sorted(set(layout.classes("test")) - set(classes))
    if unknown:
        raise ArchiveRejected(f"test/ has classes that train/ has not: {', '.join(unknown)}")
    members = canonical_order(layout.members, classes)
    slot = {member.name: index for index, member in enumerate(members)}
    images = np.zeros((len(slot), 3, image_size, image_size), dtype=np.uint8)
    failures: list[str] = []
    for name, data in archive.read(set(slot)):
        try:
            images[slot[name]] = _decode(data, image_size)
        except Exception as exc:
            failures.append(f"{name} ({type(exc).__name__}: {exc})")
    if failures:
        named = "; ".join(failures[:MAX_NAMED_FAILURES])
        more = len(failures) - MAX_NAMED_FAILURES
        raise ArchiveRejected(
            f"{len(failures)} file(s) could not be read as images: {named}"
            + (f"; and {more} more" if more > 0 else "")
        )
    label_of = {name: index for index, name in enumerate(classes)}
    labels = torch.tensor([label_of[m.label] for m in members], dtype=torch.long)
    everything = ImageSet(images=torch.from_numpy(images), labels=labels)
    in_test = torch.tensor([m.split == "test" for m in members], dtype=torch.bool)
    if bool(in_test.any()):
        train = everything.subset(torch.nonzero(~in_test).flatten())
        test = everything.subset(torch.nonzero(in_test).flatten())
        split = "archive"
    else:
        kept, held = stratified_split(labels, test_fraction, seed)
        train, test, split = everything.subset(kept), everything.subset(held), "drawn"
    return ImageFolders(train, test, classes, image_size, split, layout.ignored)


def canonical_order(members: list[Member], classes: list[str]) -> list[Member]:
    """The images round-robin over the classes, each class in file-name order: the same order
    whatever order the archive was written in, and every prefix class-balanced (as in the
    official CIFAR-10 batches)."""
    by_name = sorted(members, key=lambda m: m.name)
    rank: dict[str, int] = {}
    seen: dict[tuple[str, str], int] = {}
    for member in by_name:
        key = (member.split, member.label)
        rank[member.name] = seen.get(key, 0)
        seen[key] = rank[member.name] + 1
    index = {name: i for i, name in enumerate(classes)}
    return sorted(by_name, key=lambda m: (m.split, rank[m.name], index[m.label]))


def save_image_folders(folders: ImageFolders, path: Path) -> None:
    """The decoded dataset as one file of tensors, written atomically."""
    atomic_torch_save(
        {
            "train_images": folders.train.images,
            "train_labels": folders.train.labels,
            "test_images": folders.test.images,
            "test_labels": folders.test.labels,
            "classes": folders.classes,
            "image_size": folders.image_size,
        },
        path,
    )


def load_image_folders(path: Path) -> tuple[ImageSet, ImageSet, list[str], int]:
    """What save_image_folders wrote: train, test, classes, image size."""
    payload = torch.load(path, weights_only=True)
    return (
        ImageSet(payload["train_images"], payload["train_labels"]),
        ImageSet(payload["test_images"], payload["test_labels"]),
        list(payload["classes"]),
        int(payload["image_size"]),
    )
