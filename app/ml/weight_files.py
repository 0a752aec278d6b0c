"""Weights files as users bring them: safetensors, or a PyTorch state_dict saved with torch.save.

Nothing in a file is ever run. safetensors holds tensors and a JSON header, nothing else; a
PyTorch file is a pickle, read only by torch's weights-only unpickler (torch.load with
weights_only=True), which refuses any reference to code before it could be called.
"""

import io
import pickle
import pickletools
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as load_safetensors

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
# What torch.save itself refers to in a state_dict's pickle: never the code a refusal names.
_TENSOR_GLOBALS = ("torch.", "collections.OrderedDict")
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
    """The format and the tensor shapes of the weights file at `path`, read without loading the
    tensors where the format allows (safetensors, and torch.save's zip archives)."""
    size = path.stat().st_size
    with path.open("rb") as file:
        fmt = sniff_format(file.read(SNIFF_BYTES), size)
    if fmt == "safetensors":
        try:
            with safe_open(str(path), framework="pt") as tensors:  # type: ignore[no-untyped-call]
                names = tensors.keys()  # a safe_open is not iterable itself
                shapes = {name: list(tensors.get_slice(name).get_shape()) for name in names}
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsRejected(f"file: a damaged safetensors file ({exc})") from None
    else:
        state = state_dict_of(_torch_load(path, mmap=_is_zip(path)))
        shapes = {name: list(tensor.shape) for name, tensor in state.items()}
    if not shapes:
        raise WeightsRejected("file: the file holds no tensors")
    return WeightsSummary(fmt, shapes)


def read_state_dict(data: bytes, fmt: WeightsFormat) -> dict[str, torch.Tensor]:
    """The tensors of a weights file's bytes (checked by inspect_weights when it came in)."""
    if fmt == "safetensors":
        try:
            return load_safetensors(data)
        except (SafetensorError, ValueError) as exc:
            raise WeightsRejected(f"a damaged safetensors file ({exc})") from None
    return state_dict_of(_torch_load(io.BytesIO(data)))


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


def _is_zip(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(len(ZIP_MAGIC)) == ZIP_MAGIC


def _torch_load(source: Path | io.BytesIO, *, mmap: bool = False) -> Any:
    """torch.load with weights_only=True: a pickle that refers to code is refused, unrun."""
    try:
        with warnings.catch_warnings():
            # Older pickle protocols draw a warning about the unpickler's coverage; a file it
            # cannot read is refused below all the same.
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(source, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        refused = _REFUSED_GLOBAL.search(str(exc))
        code = refused[1] if refused is not None else _first_global(source)
        if code is not None:
            raise WeightsRejected(
                f"file: its pickle refers to {code}, which is code, not a tensor; only "
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


def _first_global(source: Path | io.BytesIO) -> str | None:
    """The first code (module.name) a bare pickle refers to, read from its opcodes without
    unpickling anything; None when it names none or is not a pickle. torch's unpickler may stop
    at an opcode it does not take before it meets the reference."""
    data = source.read_bytes() if isinstance(source, Path) else source.getvalue()
    strings: list[str] = []  # the last strings pushed: STACK_GLOBAL takes its names from them
    try:
        for opcode, argument, _ in pickletools.genops(data):
            name = None
            if opcode.name in ("GLOBAL", "INST"):
                name = str(argument).replace(" ", ".")
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                name = f"{strings[-2]}.{strings[-1]}"
            elif isinstance(argument, str):
                strings = [*strings[-1:], argument]
            if name is not None and not name.startswith(_TENSOR_GLOBALS):
                return name
    except Exception:  # not a pickle after all, or a damaged one
        return None
    return None
