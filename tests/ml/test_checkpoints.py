import errno
import hashlib
import os
from pathlib import Path

import pytest
import torch

from app.ml import checkpoints
from app.ml.checkpoints import CheckpointStore, atomic_torch_save


def state(value: float) -> dict[str, torch.Tensor]:
    return {"w": torch.full((1000,), value)}


def test_keeps_the_newest_two_by_position(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    for epoch, step in [(1, 50), (1, 100), (2, 50), (2, 100)]:
        store.save(state(epoch * 1000 + step), epoch, step)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "epoch0002-step00000050.pt",
        "epoch0002-step00000100.pt",
    ]
    loaded = store.load_latest()
    assert loaded is not None and loaded[0]["w"][0] == 2100


@pytest.mark.parametrize("damage", [b"", b"garbage", "truncate"])
def test_a_newest_checkpoint_that_does_not_load_falls_back(
    tmp_path: Path, damage: bytes | str
) -> None:
    store = CheckpointStore(tmp_path)
    store.save(state(1), 1, 10)
    newest = store.save(state(2), 1, 20)
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2] if damage == "truncate" else damage)  # type: ignore[arg-type]
    loaded = store.load_latest()
    assert loaded is not None
    assert loaded[1].name == "epoch0001-step00000010.pt" and loaded[0]["w"][0] == 1


def test_nothing_loads_gives_none(tmp_path: Path) -> None:
    assert CheckpointStore(tmp_path / "absent").load_latest() is None
    store = CheckpointStore(tmp_path)
    store.save(state(1), 1, 10).write_bytes(b"x")
    assert store.load_latest() is None


def test_stale_temporaries_are_removed(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    kept = store.save(state(1), 1, 10)
    (tmp_path / ".epoch0001-step00000020.pt.abc123.tmp").write_bytes(b"half")
    store.remove_stale_temporaries()
    assert list(tmp_path.iterdir()) == [kept]


def test_the_returned_sha256_is_the_file_digest(tmp_path: Path) -> None:
    digest = atomic_torch_save(state(3), tmp_path / "m.pt")
    assert digest == hashlib.sha256((tmp_path / "m.pt").read_bytes()).hexdigest()


def test_a_full_disk_leaves_the_previous_file_and_no_temporaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ckpt.pt"
    atomic_torch_save(state(1), path)
    before = path.read_bytes()

    def no_space(_fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoints.os, "fsync", no_space)
    with pytest.raises(OSError) as caught:
        atomic_torch_save(state(2), path)
    assert caught.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == [path]
    assert path.read_bytes() == before
