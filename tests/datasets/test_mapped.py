"""The tensors the image route keeps memory-mapped: bounded by their files' bytes, let go of when
their file is removed (by this process's delete or another's), and held open meanwhile, so that
a bucket's cache neither evicts nor forgets them."""

import contextlib
import gc
import io
import os
from pathlib import Path

import torch

from app.datasets.mapped import MappedTensors
from app.datasets.tensors import DecodedTensors
from app.storage.local import LocalFolder
from app.storage.store import ArtifactStore
from tests.s3 import S3Bucket
from tests.storage.test_bucket import bucket_store

IMAGES = 1000  # 3 x 8 x 8 bytes each: a file of about 190 KiB


def serialized(tensors: dict[str, torch.Tensor]) -> bytes:
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    return buffer.getvalue()


def publish(store: ArtifactStore, dataset_id: str) -> DecodedTensors:
    images = {"test_images": torch.full((IMAGES, 3, 8, 8), len(dataset_id), dtype=torch.uint8)}
    key = f"datasets/{dataset_id}/images-attempt1.pt"
    published = store.publish_new(key, lambda path: path.write_bytes(serialized(images)))
    return DecodedTensors(dataset_id, "images", published.key, published.sha256)


def key_of(tensors: DecodedTensors) -> str:
    assert tensors.key is not None
    return tensors.key


def mapped_files(under: Path) -> list[str]:
    """The files under `under` this process has memory-mapped now (`(deleted)` after a removed
    one's name); not those that other tests in this process mapped."""
    gc.collect()  # a mapping goes with the last tensor that uses it
    lines = Path("/proc/self/maps").read_text().splitlines()
    names = {parts[5] for parts in (line.split(maxsplit=5) for line in lines) if len(parts) == 6}
    return sorted(name for name in names if name.startswith(f"{under}/"))


def open_files(under: Path) -> list[str]:
    """The files under `under` this process has open now."""
    names = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):  # closed meanwhile (the listing's own)
            names.append(os.readlink(f"/proc/self/fd/{fd}"))
    return sorted(name for name in names if name.startswith(str(under)))


def test_at_most_the_bytes_kept_least_recently_used_let_go_first(tmp_path: Path) -> None:
    store = LocalFolder(tmp_path)
    a, b = publish(store, "ds-a"), publish(store, "ds-bb")
    size = (tmp_path / key_of(a)).stat().st_size
    mapped = MappedTensors(max_bytes=size + size // 2)
    assert mapped.get(store, tmp_path, a)["test_images"][0, 0, 0, 0] == 4
    assert mapped.get(store, tmp_path, b)["test_images"][0, 0, 0, 0] == 5
    assert (mapped.mapped_bytes(), mapped_files(tmp_path)) == (size, [str(tmp_path / key_of(b))])


def test_a_removed_file_is_let_go_so_that_its_disk_is_freed(tmp_path: Path) -> None:
    store = LocalFolder(tmp_path)
    a, b, c = publish(store, "ds-a"), publish(store, "ds-bb"), publish(store, "ds-ccc")
    mapped = MappedTensors()
    for tensors in (a, b, c):
        mapped.get(store, tmp_path, tensors)
    assert mapped_files(tmp_path) == [str(tmp_path / key_of(t)) for t in (a, b, c)]

    mapped.forget("ds-a")  # deleted by this process
    store.delete(key_of(b))  # deleted by another API process: noticed at the next request
    assert mapped_files(tmp_path) == [
        f"{tmp_path / key_of(b)} (deleted)",
        str(tmp_path / key_of(c)),
    ]
    mapped.get(store, tmp_path, c)
    assert mapped_files(tmp_path) == [str(tmp_path / key_of(c))]
    assert open_files(tmp_path) == [str(tmp_path / key_of(c))]


def test_a_mapped_copy_in_a_bucket_s_cache_stays_counted_and_is_not_evicted(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    writer = bucket_store(s3_bucket, tmp_path / "writer")
    a, b = publish(writer, "ds-a"), publish(writer, "ds-bb")
    store = bucket_store(s3_bucket, tmp_path / "cache", cache_bytes=1)  # keeps nothing unused
    mapped = MappedTensors()
    mapped.get(store, tmp_path, a)
    with store.open(key_of(b), b.sha256):
        pass
    store.cache.evict()
    assert a.sha256 is not None
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [a.sha256]
    assert (
        store.cache.size()
        == mapped.mapped_bytes()
        == (tmp_path / "cache" / a.sha256).stat().st_size
    )
    mapped.forget("ds-a")
    store.cache.evict()
    assert list((tmp_path / "cache").iterdir()) == []
