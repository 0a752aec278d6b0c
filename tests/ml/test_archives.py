"""Image-folder archives: the layout, decoding, and every hostile archive refused with a reason."""

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app.ml.archives import ArchiveLimits, ArchiveRejected, ImageArchive
from app.ml.image_folders import decode_archive, load_image_folders, save_image_folders


def png(color: tuple[int, int, int], size: int = 32, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), color).convert(mode).save(out, format="PNG")
    return out.getvalue()


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def write_tar(path: Path, files: dict[str, bytes], extra: tuple[tarfile.TarInfo, ...] = ()) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for info in extra:
            archive.addfile(info)
    return path


RED, BLUE = (200, 10, 10), (10, 10, 200)
FOLDERS = {
    **{f"train/red/{i}.png": png(RED) for i in range(10)},
    **{f"train/blue/{i}.png": png(BLUE) for i in range(10)},
}


def test_a_zip_in_one_folder_with_junk_and_no_test_split(tmp_path: Path) -> None:
    files = {f"photos/{name}": data for name, data in FOLDERS.items()}
    files["photos/README.txt"] = b"about these photos"
    files["photos/train/red/.DS_Store"] = b"\x00\x01"
    files["__MACOSX/photos/train/red/._0.png"] = b"\x00"
    path = write_zip(tmp_path / "photos.zip", files)
    folders = decode_archive(path, image_size=32, test_fraction=0.2, seed=1)
    assert folders.classes == ["blue", "red"]
    assert folders.test_split == "drawn"
    assert folders.counts() == {"train": {"blue": 8, "red": 8}, "test": {"blue": 2, "red": 2}}
    assert folders.ignored == 3
    red = folders.train.images[folders.train.labels == 1]
    assert torch.equal(red[0], torch.tensor(RED, dtype=torch.uint8).view(3, 1, 1).expand(3, 32, 32))


def test_a_tar_gz_with_its_own_test_split_resized_and_made_rgb(tmp_path: Path) -> None:
    files = {
        **FOLDERS,
        "train/red/big.png": png(RED, size=64),
        "test/red/0.png": png(RED, mode="L"),
        "test/blue/0.png": png(BLUE, mode="P"),
    }
    path = write_tar(tmp_path / "images.tar.gz", files)
    folders = decode_archive(path, image_size=16, test_fraction=0.2, seed=1)
    assert folders.test_split == "archive"
    assert folders.counts() == {"train": {"blue": 10, "red": 11}, "test": {"blue": 1, "red": 1}}
    assert folders.train.images.shape == (21, 3, 16, 16)
    grey = int(np.asarray(Image.new("RGB", (1, 1), RED).convert("L"))[0, 0])
    assert folders.test.images[folders.test.labels == 1].unique().tolist() == [grey]
    save_image_folders(folders, tmp_path / "cache.pt")
    train, test, classes, size = load_image_folders(tmp_path / "cache.pt")
    assert torch.equal(train.images, folders.train.images) and torch.equal(
        test.labels, folders.test.labels
    )
    assert (classes, size) == (["blue", "red"], 16)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../evil.png", "'..' is not allowed"),
        ("train/red/../../../evil.png", "'..' is not allowed"),
        ("/etc/evil.png", "absolute paths are not allowed"),
        ("C:/evil.png", "absolute paths are not allowed"),
        ("train\\red\\evil.png", "backslashes"),
    ],
)
@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_paths_that_escape_are_refused(tmp_path: Path, kind: str, name: str, message: str) -> None:
    files = {**FOLDERS, name: png(RED)}
    writer = write_zip if kind == "zip" else write_tar
    path = writer(tmp_path / f"slip.{kind}", files)
    with pytest.raises(ArchiveRejected, match=message):
        ImageArchive(path).layout()


def test_links_and_devices_are_refused(tmp_path: Path) -> None:
    for kind, message in (
        (tarfile.SYMTYPE, "links are not allowed: 'train/red/link.png'"),
        (tarfile.LNKTYPE, "links are not allowed: 'train/red/link.png'"),
        (tarfile.CHRTYPE, "only files and folders are allowed"),
        (tarfile.FIFOTYPE, "only files and folders are allowed"),
    ):
        info = tarfile.TarInfo("train/red/link.png")
        info.type, info.linkname = kind, "/etc/passwd"
        path = write_tar(tmp_path / "links.tar.gz", FOLDERS, (info,))
        with pytest.raises(ArchiveRejected, match=message):
            ImageArchive(path).layout()
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as archive:
        link = zipfile.ZipInfo("train/red/link.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(ArchiveRejected, match="links are not allowed"):
        ImageArchive(path).layout()


def test_bombs_are_refused_before_and_while_they_expand(tmp_path: Path) -> None:
    zeros = {**FOLDERS, "train/red/bomb.png": bytes(20 * 1024 * 1024)}
    for writer, suffix in ((write_zip, "zip"), (write_tar, "tar.gz")):
        path = writer(tmp_path / f"bomb.{suffix}", zeros)
        with pytest.raises(ArchiveRejected, match="refused as a possible archive bomb"):
            ImageArchive(path).layout()
    # A zip whose directory understates what an entry expands to: caught while it is read.
    path = write_zip(tmp_path / "liar.zip", {**FOLDERS, "train/red/liar.png": bytes(100_000)})
    data = bytearray(path.read_bytes())
    # In the central directory (the name's last occurrence), the uncompressed size sits 22
    # bytes before the name (offset 24 of a 46-byte fixed header).
    size_at = data.rfind(b"train/red/liar.png") - 46 + 24
    data[size_at : size_at + 4] = (10).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    archive = ImageArchive(path)
    layout = archive.layout()  # the directory claims 10 bytes
    with pytest.raises(ArchiveRejected, match="damaged"):
        list(archive.read({m.name for m in layout.members}))


def test_images_too_many_to_decode_in_memory_are_refused(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "many.zip", FOLDERS)  # 20 images
    limits = ArchiveLimits(max_decoded_bytes=20 * 3 * 32 * 32 - 1)
    with pytest.raises(ArchiveRejected) as refused:
        decode_archive(path, image_size=32, test_fraction=0.2, seed=1, limits=limits)
    assert str(refused.value) == (
        f"20 images of 32x32 pixels take 61440 bytes decoded; at most {61440 - 1}: use a "
        "smaller image_size"
    )
    assert decode_archive(path, image_size=16, test_fraction=0.2, seed=1, limits=limits)


def test_entry_count_and_entry_size_limits(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "many.zip", FOLDERS)
    with pytest.raises(ArchiveRejected, match="more than 5 entries"):
        ImageArchive(path, ArchiveLimits(max_entries=5)).layout()
    with pytest.raises(ArchiveRejected, match="an image may have at most 10 bytes"):
        ImageArchive(path, ArchiveLimits(max_entry_bytes=10)).layout()


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"train/red/0.png": png(RED)}, "a classifier needs at least 2"),
        ({**FOLDERS, "test/green/0.png": png(RED)}, "test/ has classes that train/ has not: green"),
        (
            {**FOLDERS, "train/red/deeper/0.png": png(RED)},
            "unexpected entry 'train/red/deeper/0.png'",
        ),
        ({**FOLDERS, "valid/red/0.png": png(RED)}, "unexpected entry 'valid/red/0.png'"),
        ({"README.txt": b"nothing"}, r"train/ holds 0 class folder\(s\)"),
    ],
)
def test_layouts_that_are_not_train_class_image(
    tmp_path: Path, files: dict[str, bytes], message: str
) -> None:
    path = write_zip(tmp_path / "odd.zip", files)
    with pytest.raises(ArchiveRejected, match=message):
        decode_archive(path, image_size=32, test_fraction=0.2, seed=1)


def test_files_that_are_not_images_are_named(tmp_path: Path) -> None:
    files = {
        **FOLDERS,
        "train/red/notes.png": b"not an image",
        "train/blue/cut.png": png(BLUE)[:60],
    }
    path = write_zip(tmp_path / "junk.zip", files)
    with pytest.raises(ArchiveRejected) as refused:
        decode_archive(path, image_size=32, test_fraction=0.2, seed=1)
    message = str(refused.value)
    assert message.startswith("2 file(s) could not be read as images: ")
    assert "train/red/notes.png (UnidentifiedImageError" in message
    assert "train/blue/cut.png (" in message


def test_not_an_archive(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ArchiveRejected, match=r"neither a zip nor a tar\.gz"):
        ImageArchive(path)
