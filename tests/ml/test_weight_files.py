"""Weights files read without running anything: safetensors and torch.save's state_dicts (both
of its formats) are taken; a pickle that would run code is refused before it could, and a file
that holds no tensors is refused saying so."""

import io
import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as safetensors_bytes

from app.ml.weight_files import WeightsRejected, inspect_weights, read_state_dict

STATE = {"conv.weight": torch.arange(24.0).reshape(2, 3, 2, 2), "conv.bias": torch.ones(2)}
SHAPES = {"conv.weight": [2, 3, 2, 2], "conv.bias": [2]}


class MakesAFile:
    """Unpickled, it would create `marker`: the code a malicious weights file carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, (f"touch {self.marker}",))


def malicious_files(marker: Path) -> dict[str, bytes]:
    """Files that would create `marker` if they were unpickled: bare pickles (both the protocol
    torch.save's old format uses and Python's default) and a torch.save zip archive."""
    archive = io.BytesIO()
    torch.save({"conv.weight": STATE["conv.weight"], "hook": MakesAFile(marker)}, archive)
    bare = {"conv.bias": [1.0, 1.0], "hook": MakesAFile(marker)}
    return {
        "protocol-2.pkl": pickle.dumps(bare, protocol=2),
        "default-protocol.pkl": pickle.dumps(bare),
        "torch-save.pt": archive.getvalue(),
    }


def torch_bytes(obj: object, *, zip_format: bool = True) -> bytes:
    out = io.BytesIO()
    torch.save(obj, out, _use_new_zipfile_serialization=zip_format)
    return out.getvalue()


def written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("name", "data", "fmt"),
    [
        ("w.safetensors", safetensors_bytes(STATE), "safetensors"),
        ("w.pt", torch_bytes(STATE), "pytorch"),
        ("legacy.pt", torch_bytes(STATE, zip_format=False), "pytorch"),
        ("checkpoint.pt", torch_bytes({"state_dict": STATE, "epoch": 3}), "pytorch"),
    ],
)
def test_weights_files_are_read_in_every_format(
    tmp_path: Path, name: str, data: bytes, fmt: str
) -> None:
    summary = inspect_weights(written(tmp_path / name, data))
    assert (summary.format, summary.shapes, summary.parameters) == (fmt, SHAPES, 26)
    loaded = read_state_dict(data, summary.format)
    assert sorted(loaded) == sorted(STATE)  # safetensors keeps its names sorted
    for key, tensor in STATE.items():
        assert torch.equal(loaded[key], tensor)


def test_a_pickle_carrying_code_is_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    for name, data in malicious_files(marker).items():
        with pytest.raises(WeightsRejected) as refused:
            inspect_weights(written(tmp_path / name, data))
        assert str(refused.value) == (
            "file: its pickle refers to posix.system, which is code, not a tensor; only tensors "
            "are read from a PyTorch file (torch.load with weights_only=True) and nothing in "
            "this one was run"
        ), name
        with pytest.raises(WeightsRejected, match=r"posix\.system, which is code"):
            read_state_dict(data, "pytorch")
    assert not marker.exists()
    # The same bytes, unpickled as pickle would, do run: the files are really malicious.
    pickle.loads(malicious_files(marker)["protocol-2.pkl"])
    assert marker.exists()


def a_zip_archive() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("train/cat/1.png", b"not really")
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"hello, weights\n", "file: not a tensor file: neither safetensors nor a PyTorch "),
        (b"\x89PNG\r\n\x1a\n" + bytes(64), "file: not a tensor file: neither safetensors nor "),
        (a_zip_archive(), "file: not a tensor file: not a PyTorch state_dict saved with "),
        (safetensors_bytes(STATE)[:-5], "file: a damaged safetensors file (Error while "),
        (torch_bytes([torch.zeros(2)]), "file: a PyTorch file, but it holds a list, not a "),
        (torch_bytes({"w": torch.zeros(2), "epoch": 3}), "file: a PyTorch file, but not a "),
        (torch_bytes({}), "file: the file holds no tensors"),
        (safetensors_bytes({}), "file: the file holds no tensors"),
    ],
)
def test_files_that_are_not_weights_are_refused_saying_why(
    tmp_path: Path, data: bytes, reason: str
) -> None:
    with pytest.raises(WeightsRejected) as refused:
        inspect_weights(written(tmp_path / "upload", data))
    assert str(refused.value).startswith(reason), refused.value


def test_entries_that_are_not_tensors_are_named() -> None:
    entries = {"w": torch.zeros(1), **{f"step{i}": i for i in range(7)}}
    with pytest.raises(WeightsRejected) as refused:
        read_state_dict(torch_bytes(entries), "pytorch")
    assert str(refused.value) == (
        "file: a PyTorch file, but not a state_dict: 'step0', 'step1', 'step2', 'step3', "
        "'step4' and 2 more are not a tensor"
    )
