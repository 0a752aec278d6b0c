import errno
import hashlib
import os
from pathlib import Path

import pytest
import torch

from app.ml import checkpoints
from app.ml.checkpoints import atomic_torch_save, load_checkpoint, write_torch_file


def state(value: float) -> dict[str, torch.Tensor]:
    return {"w": torch.full((1000,), value)}


def test_a_checkpoint_loads_back_from_an_open_file(tmp_path: Path) -> None:
    digest = write_torch_file({"epoch": 2, "w": torch.arange(5)}, tmp_path / "c.pt")
    assert digest == hashlib.sha256((tmp_path / "c.pt").read_bytes()).hexdigest()
    with (tmp_path / "c.pt").open("rb") as file:
        loaded = load_checkpoint(file)
    assert loaded["epoch"] == 2 and loaded["w"].tolist() == [0, 1, 2, 3, 4]


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
