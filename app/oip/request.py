"""An inference request: its JSON header, validated, with the binary parts that follow it
handed to the inputs that declare them."""

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.errors import describe_validation_error
from app.oip.errors import BadRequest
from app.oip.tensors import NUMPY_TYPES, from_binary, from_json

Parameter = str | int | float | bool
BINARY_SIZE = "binary_data_size"
LENGTH = re.compile(r"[0-9]{1,12}")


class InputIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    data: Any = Field(default=None, description="Flat or nested, row-major; absent when binary.")


class OutputIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    parameters: dict[str, Parameter] = Field(default_factory=dict)


class InferenceRequestIn(BaseModel):
    """The protocol's $inference_request."""

    model_config = ConfigDict(extra="allow")

    id: str | None = None
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    inputs: list[InputIn] = Field(min_length=1)
    outputs: list[OutputIn] | None = None


@dataclass(frozen=True)
class RequestedOutput:
    name: str
    binary: bool


@dataclass(frozen=True)
class InferenceRequest:
    id: str | None
    inputs: dict[str, tuple[str, np.ndarray]]  # name: (datatype, data)
    outputs: list[RequestedOutput] | None  # None: every output


def parse(body: bytes, header_length: str | None) -> InferenceRequest:
    """The request in `body`; with the binary extension, `header_length` is the length of its
    JSON part (the Inference-Header-Content-Length header). 400 naming what is wrong."""
    header, binary = _split(body, header_length)
    try:
        request = InferenceRequestIn.model_validate(header)
    except ValidationError as exc:
        raise BadRequest(describe_validation_error(exc)) from None
    return InferenceRequest(
        id=request.id,
        inputs=_inputs(request.inputs, binary),
        outputs=None if request.outputs is None else _outputs(request),
    )


def _split(body: bytes, header_length: str | None) -> tuple[object, bytes]:
    if header_length is None:
        json_part, binary = body, b""
    else:
        if not LENGTH.fullmatch(header_length) or int(header_length) > len(body):
            raise BadRequest(
                f"Inference-Header-Content-Length {header_length[:20]!r} is not a length within "
                f"the body's {len(body)} bytes"
            )
        json_part, binary = body[: int(header_length)], body[int(header_length) :]
    try:
        return json.loads(json_part), binary
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest("the request is not valid JSON (or its header length is wrong)") from None


def _inputs(inputs: list[InputIn], binary: bytes) -> dict[str, tuple[str, np.ndarray]]:
    parsed: dict[str, tuple[str, np.ndarray]] = {}
    offset = 0
    for given in inputs:
        if given.name in parsed:
            raise BadRequest(f"input '{given.name}' is given twice")
        if given.datatype not in NUMPY_TYPES:
            raise BadRequest(
                f"input '{given.name}': datatype {given.datatype!r} is not one this server's "
                f"models take ({', '.join(NUMPY_TYPES)})"
            )
        size = given.parameters.get(BINARY_SIZE)
        if size is None:
            if given.data is None:
                raise BadRequest(f"input '{given.name}' has neither data nor binary_data_size")
            array = from_json(given.name, given.datatype, given.shape, given.data)
        else:
            if type(size) is not int or size < 0:
                raise BadRequest(f"input '{given.name}': binary_data_size must be a byte count")
            if offset + size > len(binary):
                raise BadRequest(
                    f"input '{given.name}': its binary part is truncated ({len(binary) - offset} "
                    f"bytes left of the {size} it declares)"
                )
            array = from_binary(
                given.name, given.datatype, given.shape, binary[offset : offset + size]
            )
            offset += size
        parsed[given.name] = (given.datatype, array)
    if offset != len(binary):
        raise BadRequest(
            f"the body has {len(binary) - offset} bytes of binary data that no input declares"
        )
    return parsed


def _outputs(request: InferenceRequestIn) -> list[RequestedOutput]:
    default = request.parameters.get("binary_data_output") is True
    requested = []
    for output in request.outputs or []:
        binary = output.parameters.get("binary_data", default)
        requested.append(RequestedOutput(output.name, binary is True))
    return requested
