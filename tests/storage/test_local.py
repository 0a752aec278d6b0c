"""The local folder as the artifact store: today's layout, a rename to publish, and every read
checked against its recorded sha256."""

import hashlib
from pathlib import Path

import pytest

from app.storage.local import LocalFolder
from app.storage.store import ArtifactDamaged, ArtifactMissing, Published, StoredObject


def read(store: LocalFolder, key: str, sha256: str | None) -> bytes:
    with store.open(key, sha256) as file:
        return file.read()


def test_a_published_file_is_at_its_key_and_read_back_verified(tmp_path: Path) -> None:
    store = LocalFolder(tmp_path)
    published = store.publish_bytes("jobs/7/model-attempt1.pt", b"weights")
    sha256 = hashlib.sha256(b"weights").hexdigest()
    assert published == Published("jobs/7/model-attempt1.pt", 7, sha256)
    assert (tmp_path / "jobs/7/model-attempt1.pt").read_bytes() == b"weights"
    assert sorted(p.name for p in (tmp_path / "jobs/7").iterdir()) == ["model-attempt1.pt"]
    assert read(store, "jobs/7/model-attempt1.pt", sha256) == b"weights"
    assert read(store, "jobs/7/model-attempt1.pt", None) == b"weights"


def test_a_staged_file_waits_beside_its_key_and_a_failed_write_leaves_nothing(
    tmp_path: Path,
) -> None:
    store = LocalFolder(tmp_path)
    staged = store.staging_path("jobs/7/checkpoints/epoch0001-step00000010-attempt1.pt")
    assert staged.parent == tmp_path / "jobs/7/checkpoints"
    assert staged.name.startswith(".epoch0001-step00000010-attempt1.pt.")
    assert staged.name.endswith(".tmp")

    def fail(path: Path) -> None:
        path.write_bytes(b"half")
        raise OSError("no space left")

    with pytest.raises(OSError, match="no space left"):
        store.publish_new("jobs/7/checkpoints/epoch0001-step00000010-attempt1.pt", fail)
    assert list((tmp_path / "jobs/7/checkpoints").iterdir()) == []


def test_a_damaged_or_missing_file_is_refused_naming_the_store_and_key(tmp_path: Path) -> None:
    store = LocalFolder(tmp_path)
    good = store.publish_bytes("jobs/1/model-attempt1.pt", b"weights").sha256
    (tmp_path / "jobs/1/model-attempt1.pt").write_bytes(b"weighty")
    bad = hashlib.sha256(b"weighty").hexdigest()
    with pytest.raises(ArtifactDamaged) as damaged:
        read(store, "jobs/1/model-attempt1.pt", good)
    assert str(damaged.value) == (
        f"artifact store {tmp_path}: jobs/1/model-attempt1.pt is damaged: its sha256 is {bad}, "
        f"not the {good} recorded when it was written; it was not used"
    )
    with pytest.raises(ArtifactMissing) as missing:
        read(store, "jobs/2/model-attempt1.pt", good)
    assert str(missing.value) == f"artifact store {tmp_path}: jobs/2/model-attempt1.pt is missing"


def test_listing_and_deleting_under_a_prefix(tmp_path: Path) -> None:
    store = LocalFolder(tmp_path)
    for key in ("jobs/1/a.pt", "jobs/1/checkpoints/b.pt", "jobs/2/c.pt", "exports/m/v1/m-v1.onnx"):
        store.publish_bytes(key, key.encode())
    listed = list(store.list("jobs"))
    assert [(o.key, o.size) for o in listed] == [
        ("jobs/1/a.pt", 11),
        ("jobs/1/checkpoints/b.pt", 23),
        ("jobs/2/c.pt", 11),
    ]
    assert all(isinstance(o, StoredObject) and o.modified_at > 0 for o in listed)
    store.delete_prefix("jobs/1")
    store.delete("jobs/2/c.pt")
    store.delete("jobs/2/c.pt")  # already gone: nothing happens
    store.delete_prefix("jobs/9")
    assert not (tmp_path / "jobs/1").exists()
    assert [o.key for o in store.list("jobs")] == []
    assert [o.key for o in store.list("exports")] == ["exports/m/v1/m-v1.onnx"]


@pytest.mark.parametrize("key", ["", "/etc/passwd", "jobs/../../x", "jobs//x", "jobs/./x"])
def test_a_key_outside_the_store_is_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="not an artifact key"):
        LocalFolder(tmp_path).staging_path(key)


def test_a_path_handed_out_reaches_the_verified_file_even_once_it_is_deleted(
    tmp_path: Path,
) -> None:
    store = LocalFolder(tmp_path)
    published = store.publish_bytes("datasets/d1/upload.zip", b"archive")
    with store.open_path(published.key, published.sha256) as path:
        store.delete(published.key)
        assert path.read_bytes() == b"archive"
