"""The hostile and odd inputs sent to a live server, each with the answer docs/operations.md
documents ("Hostile input")."""

import io
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import numpy as np
from PIL import Image

IMAGE_FORMATS = "PNG, JPEG, BMP, GIF, WEBP, TIFF"
NOT_AN_IMAGE = f"the file is not an image in a format we read ({IMAGE_FORMATS})"


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def rgb(width: int = 32, height: int = 32, seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height (a decompression bomb's calling card)."""
    data = bytearray(encode(rgb(1, 1), "PNG"))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def animated_gif() -> bytes:
    frames = [rgb(seed=1).convert("P"), rgb(seed=2).convert("P")]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


def zip_of_png() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("cat.png", encode(rgb(), "PNG"))
    return buffer.getvalue()


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def tar_gz(entries: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for info, data in entries:
            info.size = len(data) if info.isfile() else 0
            archive.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buffer.getvalue()


def tar_gz_with_link() -> bytes:
    link = tarfile.TarInfo("train/a/link.png")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    return tar_gz([(tarfile.TarInfo("train/a/1.png"), b"x"), (link, b"")])


# 64 MiB of zeros in one entry: about 64 KiB compressed.
GZIP_BOMB = tar_gz([(tarfile.TarInfo("train/a/zero.png"), bytes(64 * 1024 * 1024))])


def send_dataset(
    data: bytes, filename: str, form: dict[str, str]
) -> Callable[[httpx.Client], httpx.Response]:
    return lambda client: client.post("/datasets", files={"file": (filename, data)}, data=form)


SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32">'
    b'<rect width="32" height="32"/></svg>'
)
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
SIXTEEN_BIT = Image.fromarray((np.arange(1024, dtype=np.uint16) * 64).reshape(32, 32))


@dataclass(frozen=True)
class Hostile:
    name: str
    send: Callable[[httpx.Client], httpx.Response]
    status: int
    detail: str | None  # the exact message; None where the answer is a prediction


def upload(
    data: bytes, filename: str = "x.png", content_type: str = "image/png"
) -> Callable[[httpx.Client], httpx.Response]:
    return lambda client: client.post("/predict", files={"file": (filename, data, content_type)})


def ok(name: str, data: bytes, filename: str = "x.png", content_type: str = "image/png") -> Hostile:
    return Hostile(name, upload(data, filename, content_type), 200, None)


def bad(name: str, data: bytes, detail: str, filename: str = "x.png") -> Hostile:
    return Hostile(name, upload(data, filename), 422, f"{filename.rsplit('/', 1)[-1]}: {detail}")


TRUNCATED_PNG = encode(rgb(), "PNG")[:300]
MISSING_FILE = (
    "file: field required: send the image in the multipart field 'file', or as the raw request "
    "body with its Content-Type (image/png, image/jpeg...)"
)
BIG = b"\x89PNG" + b"\0" * (1024 * 1024 + 1)


HOSTILE_INPUTS = [
    ok("16-bit PNG", encode(SIXTEEN_BIT, "PNG")),
    ok("CMYK JPEG", encode(rgb().convert("CMYK"), "JPEG"), "x.jpg", "image/jpeg"),
    ok("palette PNG", encode(rgb().convert("P"), "PNG")),
    ok("LA PNG", encode(rgb().convert("LA"), "PNG")),
    ok("RGBA PNG", encode(rgb().convert("RGBA"), "PNG")),
    ok("grayscale PNG", encode(rgb().convert("L"), "PNG")),
    ok("animated GIF (first frame)", animated_gif(), "x.gif", "image/gif"),
    ok("BMP", encode(rgb(), "BMP"), "x.bmp", "image/bmp"),
    ok("TIFF", encode(rgb(), "TIFF"), "x.tiff", "image/tiff"),
    ok("WebP", encode(rgb(), "WEBP"), "x.webp", "image/webp"),
    ok("filename with ../", encode(rgb(), "PNG"), "../../etc/passwd"),
    ok("wrong Content-Type on the part", encode(rgb(), "PNG"), "x.png", "text/plain"),
    ok("1x1 (resized)", encode(rgb(1, 1), "PNG")),
    ok("33x32 (resized)", encode(rgb(33, 32), "PNG")),
    Hostile(
        "33x32 with resize=false",
        lambda client: client.post(
            "/predict",
            params={"resize": "false"},
            files={"file": ("x.png", encode(rgb(33, 32), "PNG"), "image/png")},
        ),
        422,
        "x.png: the image is 33x32 pixels; this model takes 32x32 (leave out resize=false to "
        "have it resized)",
    ),
    bad(
        "10000x10000 header (over Pillow's warning limit)",
        png_claiming(10000, 10000),
        "the image is 10000x10000 pixels; at most 50,000,000 pixels are decoded",
    ),
    bad(
        "decompression bomb: 20000x20000 header",
        png_claiming(20000, 20000),
        "the image is far too large to decode (Image size (400000000 pixels) exceeds limit of "
        "178956970 pixels, could be decompression bomb DOS attack.)",
    ),
    bad("PDF", PDF, NOT_AN_IMAGE, "x.pdf"),
    bad("zip", zip_of_png(), NOT_AN_IMAGE, "x.zip"),
    bad("SVG", SVG, NOT_AN_IMAGE, "x.svg"),
    bad("text", b"a cat, honestly", NOT_AN_IMAGE, "x.txt"),
    bad("ICO (a format Pillow reads but we do not)", encode(rgb(), "ICO"), NOT_AN_IMAGE, "x.ico"),
    bad("empty", b"", "the file is empty"),
    bad("GIF header, then garbage", b"GIF89a" + b"\xff" * 40, NOT_AN_IMAGE, "x.gif"),
    Hostile(
        "truncated PNG",
        upload(TRUNCATED_PNG),
        422,
        "x.png: the image data is truncated or corrupt",
    ),
    bad("text, named ../../etc/passwd", b"root:x:0:0", NOT_AN_IMAGE, "../../etc/passwd"),
    Hostile(
        "JSON body instead of a form",
        lambda client: client.post("/predict", json={"file": "x"}),
        422,
        MISSING_FILE,
    ),
    Hostile(
        "missing field (named image)",
        lambda client: client.post("/predict", files={"image": ("x.png", encode(rgb(), "PNG"))}),
        422,
        MISSING_FILE,
    ),
    Hostile(
        "two files",
        lambda client: client.post(
            "/predict",
            files=[("file", ("a.png", encode(rgb(), "PNG"))), ("file", ("b.png", b"x"))],
        ),
        422,
        "file: send exactly one file in the field 'file' (got 2)",
    ),
    Hostile(
        "text field instead of a file",
        lambda client: client.post("/predict", data={"file": "hello"}),
        422,
        "file: expected a file upload, got a text field",
    ),
    Hostile(
        "body over 1 MiB",
        upload(BIG),
        413,
        "request body too large: the limit here is 1048576 bytes",
    ),
    Hostile(
        "JSON job over 64 KiB",
        lambda client: client.post("/jobs", json={"epochs": 1, "pad": "x" * 70_000}),
        413,
        "request body too large: the limit here is 65536 bytes",
    ),
    Hostile(
        "job_id not a number",
        lambda client: client.post(
            "/predict", params={"job_id": "abc"}, files={"file": ("x.png", encode(rgb(), "PNG"))}
        ),
        422,
        "query.job_id: Input should be a valid integer, unable to parse string as an integer",
    ),
    Hostile(
        "job_id past 64 bits",
        lambda client: client.post(
            "/predict", params={"job_id": str(2**64)}, files={"file": ("x.png", b"x")}
        ),
        422,
        "query.job_id: Input should be less than or equal to 2147483647",
    ),
    Hostile(
        "unknown job_id",
        lambda client: client.post(
            "/predict", params={"job_id": 999}, files={"file": ("x.png", encode(rgb(), "PNG"))}
        ),
        404,
        "job 999 not found",
    ),
    *[
        Hostile(f"dataset: {name}", send_dataset(data, filename, form), 422, detail)
        for name, data, filename, form, detail in (
            (
                "zip-slip",
                zip_of({"train/a/1.png": b"x", "../../evil.png": b"x"}),
                "slip.zip",
                {},
                "file: unsafe entry name '../../evil.png': '..' is not allowed",
            ),
            (
                "symbolic link in a tar.gz",
                tar_gz_with_link(),
                "link.tar.gz",
                {},
                "file: links are not allowed: 'train/a/link.png'",
            ),
            (
                "gzip bomb",
                GZIP_BOMB,
                "bomb.tar.gz",
                {},
                f"file: the archive expands to more than {200 * len(GZIP_BOMB)} bytes (at most "
                "8589934592 bytes, and 200 times its own size): refused as a possible archive bomb",
            ),
            (
                "PDF",
                PDF,
                "x.pdf",
                {},
                "file: the file is neither a zip nor a tar.gz archive (a CSV needs the form field "
                "target)",
            ),
            (
                "CSV without its target column",
                b"a,b\n1,2\n",
                "t.csv",
                {"target": "quality"},
                "file: no column 'quality' in the CSV; its columns are 'a', 'b'",
            ),
        )
    ],
]
