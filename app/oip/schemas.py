"""The protocol's answers, for the OpenAPI document (the routes build them as plain JSON)."""

from typing import Any

from pydantic import BaseModel, Field

from app.oip.request import InferenceRequestIn, Parameter


class ProtocolErrorOut(BaseModel):
    error: str


class LiveOut(BaseModel):
    live: bool


class ReadyOut(BaseModel):
    ready: bool


class ModelReadyOut(BaseModel):
    name: str
    ready: bool


class ServerMetadataOut(BaseModel):
    name: str
    version: str
    extensions: list[str]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadataOut(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    parameters: dict[str, Parameter] = Field(
        description="classes (a JSON list, in output order), input (what it expects) and, for "
        "a table model, feature_columns (a JSON list, in input order)."
    )


class OutputOut(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    parameters: dict[str, Parameter] | None = None
    data: list[Any] | None = Field(default=None, description="Absent when sent as binary.")


class InferenceResponseOut(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    parameters: dict[str, Parameter]
    outputs: list[OutputOut]


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ProtocolErrorOut,
        "description": "A malformed request, or inputs that do "
        "not fit the model (datatype, shape, name, binary sizes).",
    },
    404: {"model": ProtocolErrorOut, "description": "No such model or version."},
    503: {"model": ProtocolErrorOut, "description": "The model's file is missing or damaged."},
}


def component_schemas() -> dict[str, Any]:
    """The request's schemas, for the document's components (the route reads its raw body)."""
    schema = InferenceRequestIn.model_json_schema(ref_template=f"{COMPONENTS}{{model}}")
    return {**schema.pop("$defs", {}), "InferenceRequestIn": schema}


COMPONENTS = "#/components/schemas/"
INFER_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": f"{COMPONENTS}InferenceRequestIn"}},
            "application/octet-stream": {
                "schema": {
                    "type": "string",
                    "format": "binary",
                    "description": "The binary tensor data extension: the JSON request (its "
                    "length in Inference-Header-Content-Length), then the inputs' binary parts.",
                }
            },
        },
    }
}
