"""Weights files kept under DATA_DIR/weights/ before they lived in the artifact store are moved
into it at the API's start: copied into the local folder, uploaded to a bucket; one already
there is left as it is."""

from pathlib import Path

import pytest

from app.storage.local import LocalFolder
from app.weights.upgrade import move_old_weights
from tests.s3 import S3Bucket
from tests.storage.test_bucket import bucket_store, read


def old_weights(data_dir: Path, weights_id: str, data: bytes) -> None:
    folder = data_dir / "weights" / weights_id
    folder.mkdir(parents=True)
    (folder / "weights.pt").write_bytes(data)


def test_old_weights_are_moved_into_the_local_folder(tmp_path: Path) -> None:
    data_dir, store = tmp_path / "data", LocalFolder(tmp_path / "artifacts")
    assert move_old_weights(data_dir, store) == 0  # nothing to move
    old_weights(data_dir, "wt-000000000001", b"one")
    old_weights(data_dir, "wt-000000000002", b"two")
    store.publish_bytes("weights/wt-000000000002/weights.pt", b"already")
    assert move_old_weights(data_dir, store) == 1
    with store.open("weights/wt-000000000001/weights.pt", None) as file:
        assert file.read() == b"one"
    with store.open("weights/wt-000000000002/weights.pt", None) as file:
        assert file.read() == b"already"
    assert sorted(p.name for p in (data_dir / "weights").iterdir()) == ["wt-000000000002"]


def test_a_folder_no_key_can_name_is_left_and_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir, store = tmp_path / "data", LocalFolder(tmp_path / "artifacts")
    old_weights(data_dir, "not a weights id", b"odd")
    old_weights(data_dir, "wt-000000000004", b"four")
    assert move_old_weights(data_dir, store) == 1
    assert "weights not a weights id were not moved into the artifact store" in caplog.text
    assert sorted(p.name for p in (data_dir / "weights").iterdir()) == ["not a weights id"]


def test_old_weights_are_uploaded_to_a_bucket(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    store = bucket_store(s3_bucket, tmp_path / "cache")
    old_weights(tmp_path / "data", "wt-000000000003", b"three")
    assert move_old_weights(tmp_path / "data", store) == 1
    assert s3_bucket.stored_keys() == ["weights/wt-000000000003/weights.pt"]
    assert read(store, "weights/wt-000000000003/weights.pt", None) == b"three"
    assert list((tmp_path / "data" / "weights").iterdir()) == []
