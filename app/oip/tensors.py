"""Tensors as the protocol carries them: JSON arrays (flat or nested, row-major) or little-endian
binary parts, checked against the datatype and shape the request declares."""

import math
import struct
from typing import Any

import numpy as np

from app.oip.errors import BadRequest

# The datatypes a model's inputs and outputs use here, with their numpy types.
NUMPY_TYPES: dict[str, np.dtype[Any]] = {"UINT8": np.dtype("<u1"), "FP32": np.dtype("<f4")}
BYTES = "BYTES"
LENGTH = struct.Struct("<I")  # a BYTES element's length prefix


MAX_DIMENSIONS = 8
MAX_DIMENSION = 2**31 - 1


def element_count(name: str, shape: list[int]) -> int:
    if len(shape) > MAX_DIMENSIONS or any(
        not isinstance(d, int) or isinstance(d, bool) or not 0 <= d <= MAX_DIMENSION for d in shape
    ):
        raise BadRequest(
            f"input '{name}': shape {shape[: MAX_DIMENSIONS + 1]} must be at most "
            f"{MAX_DIMENSIONS} whole numbers from 0 to {MAX_DIMENSION}"
        )
    return math.prod(shape)


def from_json(name: str, datatype: str, shape: list[int], data: Any) -> np.ndarray:
    """A request input given as JSON `data`, as an array of `shape`."""
    count = element_count(name, shape)
    try:
        array = np.asarray(data)
    except ValueError:
        raise BadRequest(f"input '{name}': data is not a rectangular array") from None
    if array.dtype == object:
        raise BadRequest(f"input '{name}': data is not a rectangular array of numbers")
    if array.size != count:
        raise BadRequest(
            f"input '{name}': data has {array.size} elements; shape {shape} needs {count}"
        )
    if array.dtype == bool or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise BadRequest(f"input '{name}': data must be numbers for datatype {datatype}")
    if datatype == "UINT8":
        if not np.issubdtype(array.dtype, np.integer):
            raise BadRequest(f"input '{name}': UINT8 data must be integers")
        if array.size and (array.min() < 0 or array.max() > 255):
            raise BadRequest(f"input '{name}': UINT8 data must lie in 0..255")
    converted = array.astype(NUMPY_TYPES[datatype]).reshape(shape)
    if datatype == "FP32" and not np.isfinite(converted).all():  # 1e300 is inf in float32
        raise BadRequest(f"input '{name}': data must be finite numbers in float32's range")
    return converted


def from_binary(name: str, datatype: str, shape: list[int], data: bytes) -> np.ndarray:
    """A request input sent as a binary part, as an array of `shape`."""
    count = element_count(name, shape)
    dtype = NUMPY_TYPES[datatype]
    if len(data) != count * dtype.itemsize:
        raise BadRequest(
            f"input '{name}': its binary data is {len(data)} bytes; shape {shape} of {datatype} "
            f"needs {count * dtype.itemsize}"
        )
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    if datatype == "FP32" and not np.isfinite(array).all():
        raise BadRequest(f"input '{name}': data must be finite numbers")
    return array


def to_json(array: np.ndarray | list[str]) -> list[Any]:
    """An output's data as a flat JSON array."""
    if isinstance(array, list):
        return array
    flat: list[Any] = array.reshape(-1).tolist()
    return flat


def to_binary(array: np.ndarray | list[str]) -> bytes:
    """An output's data as a binary part: little-endian numbers, or BYTES elements each with
    its 4-byte length first."""
    if isinstance(array, list):
        encoded = [text.encode() for text in array]
        return b"".join(LENGTH.pack(len(item)) + item for item in encoded)
    return np.ascontiguousarray(array).tobytes()
