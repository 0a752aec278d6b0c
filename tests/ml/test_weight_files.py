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

from app.ml import torch_zip, weight_files
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


REFUSED_CODE = (
    "file: its pickle refers to posix.system, which is code, not a tensor; only tensors are "
    "read from a PyTorch file (torch.load with weights_only=True) and nothing in this one was run"
)
REFUSED_LEGACY = (
    "file: a PyTorch file in torch.save's legacy format (before PyTorch 1.6), which is not read "
    "here; save it again with torch.save's default (zip) format, or as safetensors"
)


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
        expected = REFUSED_CODE if name == "torch-save.pt" else REFUSED_LEGACY
        with pytest.raises(WeightsRejected) as refused:
            inspect_weights(written(tmp_path / name, data))
        assert str(refused.value) == expected, name
        with pytest.raises(WeightsRejected) as refused:
            read_state_dict(data, "pytorch")
        assert str(refused.value) == expected, name
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
        (torch_bytes(STATE, zip_format=False), REFUSED_LEGACY),
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


def rewritten(data: bytes, *, deflate: str = "", padding: int = 0) -> bytes:
    """A torch.save archive written again: the entries whose names end with `deflate`
    compressed, with `padding` zero bytes after their data (after the pickle's STOP, torch
    reads them all the same)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as archive:
        for entry in source.infolist():
            chosen = bool(deflate) and entry.filename.endswith(deflate)
            info = zipfile.ZipInfo(entry.filename)
            info.compress_type = zipfile.ZIP_DEFLATED if chosen else zipfile.ZIP_STORED
            archive.writestr(info, source.read(entry) + bytes(padding if chosen else 0))
    return out.getvalue()


BOMB_PADDING_BYTES = 64 * 1024 * 1024


def expanded() -> torch.Tensor:
    """One float that claims 2**62 of them: a zero stride."""
    return torch.zeros(1).expand(2**62)


def refusals(tmp_path: Path, data: bytes) -> tuple[str, str]:
    """What the upload's check (inspect_weights) and the worker (read_state_dict) say."""
    with pytest.raises(WeightsRejected) as at_upload:
        inspect_weights(written(tmp_path / "upload", data))
    with pytest.raises(WeightsRejected) as in_worker:
        read_state_dict(data, "pytorch")
    return str(at_upload.value), str(in_worker.value)


def test_a_compressed_pickle_is_refused_before_torch_reads_it(tmp_path: Path) -> None:
    bomb = rewritten(torch_bytes(STATE), deflate="data.pkl", padding=BOMB_PADDING_BYTES)
    assert len(bomb) < BOMB_PADDING_BYTES // 100  # a small upload that claims 64 MiB
    message = (
        "file: not a PyTorch file written by torch.save: a zip archive with compressed entries "
        "(archive/data.pkl...); torch.save stores its entries uncompressed"
    )
    # Refused by the archive's check, which runs before torch.load could inflate the pickle.
    assert refusals(tmp_path, bomb) == (message, message)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (
            rewritten(torch_bytes(STATE), deflate="data/0"),
            "file: not a PyTorch file written by torch.save: a zip archive with compressed "
            "entries (archive/data/0...); torch.save stores its entries uncompressed",
        ),
        (
            # A storage record whose size is not what the pickle declares.
            rewritten(torch_bytes(STATE), deflate="data/0", padding=8),
            "file: not a PyTorch file written by torch.save: a zip archive with compressed "
            "entries (archive/data/0...); torch.save stores its entries uncompressed",
        ),
        (
            torch_bytes({"a": expanded(), "b": expanded(), "c": expanded()}),
            "file: tensor 'a' claims more numbers than its storage holds (an expanded or "
            "overlapping view); save it with .contiguous() or .clone()",
        ),
        (
            torch_bytes({"w": torch.zeros(3).as_strided((2, 2), (1, 1))}),
            "file: tensor 'w' claims more numbers than its storage holds (an expanded or "
            "overlapping view); save it with .contiguous() or .clone()",
        ),
        (
            torch_bytes({"w": torch.zeros([1] * 9)}),
            "file: tensor 'w' has 9 dimensions; at most 8 are read",
        ),
        (torch_bytes(STATE, zip_format=False), REFUSED_LEGACY),
    ],
)
def test_the_upload_check_and_the_worker_refuse_alike(
    tmp_path: Path, data: bytes, reason: str
) -> None:
    assert refusals(tmp_path, data) == (reason, reason)


def test_a_view_within_its_storage_is_read() -> None:
    base = torch.arange(6.0)
    data = torch_bytes({"w": base.reshape(2, 3).t(), "b": base[1:3]})
    loaded = read_state_dict(data, "pytorch")
    assert loaded["w"].tolist() == [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]
    assert loaded["b"].tolist() == [1.0, 2.0]


def test_sizes_past_the_limits_are_refused_in_both_formats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(weight_files, "TENSORS_MAX", 1)
    for data, fmt in [(safetensors_bytes(STATE), "safetensors"), (torch_bytes(STATE), "pytorch")]:
        path = written(tmp_path / f"w.{fmt}", data)
        with pytest.raises(WeightsRejected, match=r"^file: 2 tensors; at most 1 are read$"):
            inspect_weights(path)
        with pytest.raises(WeightsRejected, match=r"^file: 2 tensors; at most 1 are read$"):
            read_state_dict(data, fmt)  # type: ignore[arg-type]
    monkeypatch.undo()

    nine_dims = safetensors_bytes({"w": torch.zeros([1] * 9)})
    with pytest.raises(WeightsRejected, match=r"^file: tensor 'w' has 9 dimensions; at most 8"):
        inspect_weights(written(tmp_path / "dims.safetensors", nine_dims))

    # A header just over the limit (what follows it is never read).
    over = weight_files.SAFETENSORS_HEADER_MAX_BYTES + 1
    data = over.to_bytes(8, "little") + b"{" + bytes(over)
    header = "file: a safetensors header of 16777217 bytes; at most 16 MiB are read"
    with pytest.raises(WeightsRejected) as refused:
        inspect_weights(written(tmp_path / "big-header.safetensors", data))
    assert str(refused.value) == header
    with pytest.raises(WeightsRejected) as refused:
        read_state_dict(data, "safetensors")
    assert str(refused.value) == header

    # A pickle just over the limit, stored as torch.save stores it.
    pickle_over = io.BytesIO()
    with zipfile.ZipFile(pickle_over, "w") as archive:
        archive.writestr("archive/data.pkl", bytes(torch_zip.PICKLE_MAX_BYTES + 1))
    assert (
        refusals(tmp_path, pickle_over.getvalue())
        == (
            "file: not a PyTorch file written by torch.save: its pickle (archive/data.pkl) is over "
            "16 MiB",
        )
        * 2
    )
