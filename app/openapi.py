"""The OpenAPI document as the service really behaves: short operation ids, every error with the
body it really has (401, 403, 408 and 413 come from middleware the generator cannot see, 503
from a database outage; 422 is our {"detail", "errors"}, not FastAPI's list), and the bearer
key as a security scheme."""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from app.errors import ErrorOut
from app.middleware import OPEN_PATHS, is_inference
from app.oip.errors import is_protocol_path
from app.oip.schemas import component_schemas

SCHEME = "bearer"
ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}
BODY_METHODS = frozenset({"post", "put", "patch"})
READ_METHODS = frozenset({"get", "head"})


def operation_id(route: APIRoute) -> str:
    """The route function's name (`submit_job`): what a generated client names its method."""
    return route.name


def install_openapi(app: FastAPI) -> None:
    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            _declare_errors(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]


def _declare_errors(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas.update(component_schemas())
    _uploads_as_files(schemas)
    schemas["ErrorOut"] = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schemas["ErrorOut"].pop("$defs", {}))
    components["securitySchemes"] = {
        SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "TRAINSERVE_ADMIN_KEY (everything) or TRAINSERVE_PREDICT_KEY (reads "
            "and predictions); needed only when the server has keys.",
        }
    }
    schema["security"] = [{SCHEME: []}]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            _event_streams_as_3_1(responses)
            if "422" in responses and "HTTPValidationError" in str(responses["422"]):
                responses["422"] = _error("The request failed validation: `detail` says how.")
            if path in OPEN_PATHS:
                operation["security"] = []
                continue
            responses.setdefault("401", _error("API keys are on, and the key is missing or wrong."))
            if method not in READ_METHODS and not is_inference(path):
                responses.setdefault("403", _error("The predict key may not change anything."))
            if method in BODY_METHODS:
                responses.setdefault("413", _error("The request body is over the route's limit."))
                responses.setdefault(
                    "408",
                    _error("The request body stopped arriving (TRAINSERVE_BODY_TIMEOUT_SECONDS)."),
                )
            if not is_protocol_path(path):
                responses.setdefault(
                    "503", _error("The database's disk is full or its server cannot be reached.")
                )


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


def _event_streams_as_3_1(responses: dict[str, Any]) -> None:
    """An event stream as OpenAPI 3.1 can say it: FastAPI writes 3.2's itemSchema (one event's
    fields), which 3.1 validators and client generators refuse; `schema` carries it instead."""
    for response in responses.values():
        for media in response.get("content", {}).values():
            if "itemSchema" in media:
                media["schema"] = {
                    **media.pop("itemSchema"),
                    "description": "One Server-Sent Event: its fields, as the stream sends them.",
                }


def _uploads_as_files(schemas: dict[str, Any]) -> None:
    """Upload fields as client generators know files: `format: binary` beside 3.1's
    contentMediaType, and an optional one (/predict also takes a raw body) as a file rather
    than "a file or null", which they read as a text field."""
    for name, schema in schemas.items():
        if not name.startswith("Body_"):
            continue
        for field, spec in schema.get("properties", {}).items():
            choices = spec.get("anyOf", [])
            files = [choice for choice in choices if "contentMediaType" in choice]
            if files and len(choices) == 2 and {"type": "null"} in choices:
                del spec["anyOf"]
                spec.update(files[0])
            for part in (spec, spec.get("items", {})):
                if "contentMediaType" in part:
                    part["format"] = "binary"
            schema["properties"][field] = spec
