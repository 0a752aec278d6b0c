"""The benchmark's inputs: real CIFAR-10 test images as PNG, and the HTTP requests carrying them.

The requests are written to one file, each prefixed by its length, that benchmarks/loadgen.py
sends in turn; a wrk script sends the same bodies.
"""

import io
import json
import tarfile
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = 10


def cifar_test_pngs(archive: Path, count: int) -> list[bytes]:
    """The first `count` CIFAR-10 test images, classes taken in turn, re-encoded as PNG."""
    per_class = -(-count // CLASSES)
    found: dict[str, list[tuple[str, bytes]]] = {}
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = member.name.split("/")
            if member.isfile() and len(parts) == 4 and parts[1] == "test":
                found.setdefault(parts[2], []).append((parts[3], tar.extractfile(member).read()))  # type: ignore[union-attr]
    ordered = [sorted(found[name])[:per_class] for name in sorted(found)]
    jpegs = [jpeg for row in zip(*ordered, strict=True) for _, jpeg in row][:count]
    return [_png(jpeg) for jpeg in jpegs]


def _png(jpeg: bytes) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(jpeg)).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


def multipart(field: str, images: list[bytes]) -> tuple[str, bytes]:
    """A multipart/form-data body with each image as the field `field`: (Content-Type, body)."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{i}.png"\r\n'
        "Content-Type: image/png\r\n\r\n".encode()
        + image
        + b"\r\n"
        for i, image in enumerate(images)
    ]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body


def binary_tensor(image: bytes) -> tuple[dict[str, str], bytes]:
    """An Open Inference Protocol request with the image's pixels as a binary UINT8 tensor."""
    pixels = np.asarray(Image.open(io.BytesIO(image)).convert("RGB"), dtype=np.uint8)
    request = {
        "inputs": [
            {
                "name": "image",
                "datatype": "UINT8",
                "shape": [1, *pixels.shape],
                "parameters": {"binary_data_size": pixels.nbytes},
            }
        ],
        "outputs": [{"name": "label", "parameters": {"binary_data": False}}],
    }
    header = json.dumps(request).encode()
    headers = {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(header)),
    }
    return headers, header + pixels.tobytes()


def raw_body(image: bytes) -> tuple[dict[str, str], bytes]:
    """The image itself as the body."""
    return {"Content-Type": "image/png"}, image


def form(field: str) -> "BodyOf":
    """Each image alone as the multipart field `field`."""

    def body_of(image: bytes) -> tuple[dict[str, str], bytes]:
        content_type, body = multipart(field, [image])
        return {"Content-Type": content_type}, body

    return body_of


# The headers and body of the request that carries one image.
BodyOf = Callable[[bytes], tuple[dict[str, str], bytes]]


def write_requests(path: Path, url_path: str, images: list[bytes], body_of: BodyOf) -> None:
    """One raw HTTP/1.1 request per image, each prefixed by its length in 8 bytes."""
    with path.open("wb") as out:
        for image in images:
            headers, body = body_of(image)
            lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            request = (
                f"POST {url_path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{lines}"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            out.write(len(request).to_bytes(8, "big") + request)


def read_requests(path: Path) -> list[bytes]:
    """The requests write_requests wrote."""
    data, requests, offset = path.read_bytes(), [], 0
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 8], "big")
        requests.append(data[offset + 8 : offset + 8 + length])
        offset += 8 + length
    return requests
