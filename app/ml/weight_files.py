"""Weights files as users bring them: safetensors, or a PyTorch state_dict saved with torch.save.

Nothing in a file is ever run. safetensors holds tensors and a JSON header, nothing else; a
PyTorch file is a pickle, read only by torch's weights-only unpickler (torch.load with
weights_only=True), which refuses any reference to code before it could be called.
"""

import io
import pickle
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as load_safetensors

from app.ml.torch_zip import ArchiveRefused, check_torch_zip

WeightsFormat = Literal["safetensors", "pytorch"]

# safetensors: an 8-byte little-endian header length, then the JSON header itself.
SAFETENSORS_LENGTH_BYTES = 8
# torch.save's format since PyTorch 1.6 is a zip archive; before it, a bare pickle, whose
# protocol 2 and later open with the PROTO opcode.
ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTO = b"\x80"
# What a weights file opens with that tells its format (the header length and its first byte).
SNIFF_BYTES = SAFETENSORS_LENGTH_BYTES + 1
# At most this many names in a message about entries that are not tensors.
NAMES_SHOWN = 5
# Bounds on what reading a file's names and shapes may cost, far above any real model's.
SAFETENSORS_HEADER_MAX_BYTES = 16 * 1024 * 1024
TENSORS_MAX = 100_000
DIMS_MAX = 8
# At most this much of a reader's own words in a message.
REASON_MAX_CHARS = 200
# How torch's weights-only unpickler names the code a pickle refers to.
_REFUSED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


class WeightsRejected(ValueError):
    """The file is not weights this service reads; the message says why, for the user."""


@dataclass(frozen=True)
class WeightsSummary:
    """What an uploaded weights file holds: its format and each tensor's shape, by name."""

    format: WeightsFormat
    shapes: dict[str, list[int]]

    @property
    def parameters(self) -> int:
        """Numbers in all its tensors together."""
        total = 0
        for shape in self.shapes.values():
            count = 1
            for size in shape:
                count *= size
            total += count
        return total


def sniff_format(head: bytes, size: int) -> WeightsFormat:
    """The format a file opening with `head` (SNIFF_BYTES or fewer) and of `size` bytes is in."""
    if len(head) == SNIFF_BYTES and head[-1:] == b"{":
        header_bytes = int.from_bytes(head[:SAFETENSORS_LENGTH_BYTES], "little")
        if header_bytes <= size - SAFETENSORS_LENGTH_BYTES:
            return "safetensors"
    if head.startswith((ZIP_MAGIC, PICKLE_PROTO)):
        return "pytorch"
    raise WeightsRejected(
        "file: not a tensor file: neither safetensors nor a PyTorch state_dict saved with "
        "torch.save"
    )


def inspect_weights(path: Path) -> WeightsSummary:
    """The format and the tensor shapes of the weights file at `path`, checked as the worker
    reads it (read_state_dict); a safetensors file's tensors are not loaded."""
    size = path.stat().st_size
    with path.open("rb") as file:
        head = file.read(SNIFF_BYTES)
    fmt = sniff_format(head, size)
    if fmt == "safetensors":
        _check_safetensors_header(head)
        try:
            with safe_open(str(path), framework="pt") as tensors:  # type: ignore[no-untyped-call]
                names = tensors.keys()  # a safe_open is not iterable itself
                shapes = {name: list(tensors.get_slice(name).get_shape()) for name in names}
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsRejected(f"file: a damaged safetensors file ({exc})") from None
        _check_count(len(shapes))
    else:
        with path.open("rb") as file:
            state = _read_pytorch(file, size)
        shapes = {name: list(tensor.shape) for name, tensor in state.items()}
    _check_shapes(shapes)
    if not shapes:
        raise WeightsRejected("file: the file holds no tensors")
    return WeightsSummary(fmt, shapes)


def read_state_dict(data: bytes, fmt: WeightsFormat) -> dict[str, torch.Tensor]:
    """The tensors of a weights file's bytes, under the checks inspect_weights made when it came
    in."""
    if fmt == "safetensors":
        _check_safetensors_header(data[:SNIFF_BYTES])
        try:
            state = load_safetensors(data)
        except (SafetensorError, ValueError) as exc:
            raise WeightsRejected(f"file: a damaged safetensors file ({exc})") from None
        _check_count(len(state))
    else:
        state = _read_pytorch(io.BytesIO(data), len(data))
    _check_shapes({name: list(tensor.shape) for name, tensor in state.items()})
    return state


def _check_safetensors_header(head: bytes) -> None:
    header_bytes = int.from_bytes(head[:SAFETENSORS_LENGTH_BYTES], "little")
    if header_bytes > SAFETENSORS_HEADER_MAX_BYTES:
        raise WeightsRejected(
            f"file: a safetensors header of {header_bytes} bytes; at most "
            f"{SAFETENSORS_HEADER_MAX_BYTES // 1024**2} MiB are read"
        )


def _check_count(tensors: int) -> None:
    if tensors > TENSORS_MAX:
        raise WeightsRejected(f"file: {tensors} tensors; at most {TENSORS_MAX} are read")


def _check_shapes(shapes: Mapping[str, list[int]]) -> None:
    for name, shape in shapes.items():
        if len(shape) > DIMS_MAX:
            raise WeightsRejected(
                f"file: tensor {name!r} has {len(shape)} dimensions; at most {DIMS_MAX} are read"
            )


def _read_pytorch(file: BinaryIO, size: int) -> dict[str, torch.Tensor]:
    """A torch.save zip archive's state_dict, its archive checked before torch reads it and its
    tensors after (app/ml/torch_zip.py)."""
    if file.read(len(ZIP_MAGIC)) != ZIP_MAGIC:
        raise WeightsRejected(
            "file: a PyTorch file in torch.save's legacy format (before PyTorch 1.6), which is "
            "not read here; save it again with torch.save's default (zip) format, or as "
            "safetensors"
        )
    try:
        check_torch_zip(file, size, max_entries=TENSORS_MAX)
    except ArchiveRefused as exc:
        raise WeightsRejected(f"file: not a PyTorch file written by torch.save: {exc}") from None
    file.seek(0)
    state = state_dict_of(_torch_load(file))
    _check_count(len(state))
    _check_storages(state, size)
    return state


def _check_storages(state: Mapping[str, torch.Tensor], size: int) -> None:
    """Refuse tensors that claim more numbers than their storage holds (an expanded view, with
    a zero stride, makes a few bytes look like 2**62 numbers), and storages that add up to more
    than the file."""
    storage_bytes: dict[int, int] = {}
    for name, tensor in state.items():
        storage = tensor.untyped_storage()
        item_bytes = tensor.element_size()
        dims = list(zip(tensor.shape, tensor.stride(), strict=True))
        last = tensor.storage_offset() + sum((length - 1) * stride for length, stride in dims)
        zero_stride = any(stride == 0 and length > 1 for length, stride in dims)
        if tensor.numel() > 0 and (
            zero_stride
            or tensor.numel() * item_bytes > storage.nbytes()
            or (last + 1) * item_bytes > storage.nbytes()
        ):
            raise WeightsRejected(
                f"file: tensor {name!r} claims more numbers than its storage holds (an expanded "
                "or overlapping view); save it with .contiguous() or .clone()"
            )
        storage_bytes[storage.data_ptr()] = storage.nbytes()
    if sum(storage_bytes.values()) > size:
        raise WeightsRejected("file: its tensors claim more bytes than the file holds")


def state_dict_of(loaded: object) -> dict[str, torch.Tensor]:
    """The state_dict a PyTorch file holds: the file's object itself, or its "state_dict" entry
    (as in checkpoints, and in this service's own model files)."""
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping):
        raise WeightsRejected(
            f"file: a PyTorch file, but it holds a {type(loaded).__name__}, not a state_dict "
            "(a dict of names to tensors)"
        )
    others = [str(name) for name, value in loaded.items() if not _is_named_tensor(name, value)]
    if others:
        shown = ", ".join(repr(name) for name in others[:NAMES_SHOWN])
        more = f" and {len(others) - NAMES_SHOWN} more" if len(others) > NAMES_SHOWN else ""
        raise WeightsRejected(
            f"file: a PyTorch file, but not a state_dict: {shown}{more} "
            f"{'is' if len(others) == 1 else 'are'} not a tensor"
        )
    return dict(loaded)


def _is_named_tensor(name: object, value: object) -> bool:
    return isinstance(name, str) and isinstance(value, torch.Tensor)


def _torch_load(source: BinaryIO) -> Any:
    """torch.load with weights_only=True: a pickle that refers to code is refused, unrun."""
    try:
        with warnings.catch_warnings():
            # Older pickle protocols draw a warning about the unpickler's coverage; a file it
            # cannot read is refused below all the same.
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(source, map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError as exc:
        refused = _REFUSED_GLOBAL.search(str(exc))
        if refused is not None:
            raise WeightsRejected(
                f"file: its pickle refers to {refused[1]}, which is code, not a tensor; only "
                "tensors are read from a PyTorch file (torch.load with weights_only=True) and "
                "nothing in this one was run"
            ) from None
        raise WeightsRejected(
            "file: a pickle that torch's weights-only loader refuses (it holds more than "
            "tensors, or is not a PyTorch file); nothing in it was run"
        ) from None
    except Exception as exc:
        # A zip archive that torch.save did not write, a truncated file...
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:REASON_MAX_CHARS]
        raise WeightsRejected(
            f"file: not a tensor file: not a PyTorch state_dict saved with torch.save ({reason})"
        ) from None
