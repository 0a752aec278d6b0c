"""What an image request carries: the image as a multipart field or as the raw body, and the
upload's name as messages may show it."""

from pathlib import PurePosixPath
from typing import Any

from fastapi import Request

MAX_NAME_CHARS = 100
FORM_TYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})
MISSING_IMAGE = (
    "file: field required: send the image in the multipart field 'file', or as the raw request "
    "body with its Content-Type (image/png, image/jpeg...)"
)
RAW_IMAGE_BODY: dict[str, Any] = {
    "requestBody": {
        "content": {
            # Any image Content-Type is taken too (image/png, image/jpeg...); the document says
            # octet-stream, which client generators know.
            "application/octet-stream": {
                "schema": {
                    "type": "string",
                    "format": "binary",
                    "description": "The image itself as the body, as TorchServe takes it.",
                }
            }
        }
    }
}


def display_name(filename: str | None) -> str:
    """The upload's base name, for messages only: it is never used as a path."""
    name = PurePosixPath((filename or "").replace("\\", "/")).name
    printable = "".join(c for c in name if c.isprintable())[:MAX_NAME_CHARS]
    return printable or "file"


def media_type(request: Request) -> str:
    """The request's Content-Type without its parameters, lower case."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def is_raw_image(media: str) -> bool:
    """Whether a body of this type is taken as the image itself."""
    return media.startswith("image/") or media == "application/octet-stream"
