"""The plain form's reader (app/serving/plain_form.py) recognises what real clients send, leaves
every other body to the general parser, and never reads a body differently from it: whatever it
reads, Starlette's parser reads the same way from the same bytes."""

import asyncio

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import Message

from app.serving.plain_form import MOST_BYTES, one_file_of_plain_form, plain_form_boundary

IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def client_form(filename: str, data: bytes, content_type: str | None = None) -> tuple[bytes, bytes]:
    """The Content-Type and body httpx sends for a one-file form."""
    file = (filename, data) if content_type is None else (filename, data, content_type)
    request = httpx.Request("POST", "http://127.0.0.1/predict", files={"file": file})
    return request.headers["content-type"].encode(), request.read()


def general_reading(content_type: bytes, body: bytes) -> tuple[str, bytes] | str:
    """What Starlette's parser reads from the body: the one `file` upload's name and bytes, or
    a description of anything else it reads (or of its error)."""

    async def read() -> tuple[str, bytes] | str:
        async def receive() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        scope = {"type": "http", "method": "POST", "headers": [(b"content-type", content_type)]}
        try:
            form = await Request(scope, receive).form()
        except Exception as exc:
            return f"error: {exc!r}"
        items = form.multi_items()
        if len(items) == 1 and items[0][0] == "file" and isinstance(items[0][1], UploadFile):
            upload = items[0][1]
            return upload.filename or "", await upload.read()
        return f"other: {items!r}"

    return asyncio.run(read())


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [
        ("a.png", None),
        ("a.png", "image/png"),
        ("cat photo (1).jpeg", "image/jpeg"),
        ("kätzchen.png", None),  # UTF-8 bytes in the name
    ],
)
def test_what_a_real_client_sends_is_read_as_the_general_parser_reads_it(
    filename: str, content_type: str | None
) -> None:
    form_type, body = client_form(filename, IMAGE, content_type)
    boundary = plain_form_boundary(form_type)
    assert boundary is not None
    assert one_file_of_plain_form(body, boundary) == (filename, IMAGE)
    assert general_reading(form_type, body) == (filename, IMAGE)


def test_a_curl_form_with_the_boundary_inside_the_image_is_read_whole() -> None:
    boundary = b"------------------------7c1f8f1e2b3a4d5c"
    image = IMAGE + b"\r\n--" + boundary[:-1] + b"\r\n-" + boundary  # near misses inside
    body = (
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + image + b"\r\n--" + boundary + b"--\r\n"
    )
    form_type = b"multipart/form-data; boundary=" + boundary
    assert one_file_of_plain_form(body, boundary) == ("a.png", image)
    assert general_reading(form_type, body) == ("a.png", image)


def plain_body(middle: bytes = b"", boundary: bytes = b"b0undary") -> bytes:
    return (
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="a.png"\r\n'
        + middle
        + b"\r\n"
        + IMAGE
        + b"\r\n--"
        + boundary
        + b"--\r\n"
    )


@pytest.mark.parametrize(
    "body",
    [
        b"preamble\r\n" + plain_body(),
        plain_body() + b"epilogue",
        plain_body().replace(b'filename="a.png"', b'filename="C:\\\\dir\\\\a.png"'),
        plain_body().replace(b'filename="a.png"', b'filename="a\\".png"'),
        plain_body().replace(b'filename="a.png"', b"filename*=UTF-8''a.png"),
        plain_body().replace(b'filename="a.png"', b'filename="a;b.png"'),
        plain_body().replace(b'filename="a.png"', b"filename=a.png"),
        plain_body().replace(b'name="file"', b'name="File"'),
        plain_body().replace(b'; filename="a.png"', b""),  # a text field
        plain_body().replace(b"form-data", b"attachment"),
        plain_body(b"Content-Transfer-Encoding: binary\r\n"),
        plain_body(b"Content-Type: image/png\r\nContent-Type: image/png\r\n"),
        plain_body().replace(b"--\r\n", b"\r\n"),  # another part follows, or nothing
        plain_body().replace(IMAGE + b"\r\n", IMAGE + b"\r\n--b0undary\r\nmore\r\n"),
        plain_body()[:-30],
        b"",
    ],
)
def test_any_other_body_is_left_to_the_general_parser(body: bytes) -> None:
    assert one_file_of_plain_form(body, b"b0undary") is None


@pytest.mark.parametrize(
    ("filename", "part_type", "read_here"),
    [
        (b"a" * 255, b"image/png", True),
        (b"a" * 256, b"image/png", False),
        (b"a" * 4169, b"image/png", False),  # a header line the general parser refuses
        (b"a.png", b"x" * 127, True),
        (b"a.png", b"x" * 128, False),
        (b"a.png", b"x" * 4220, False),
    ],
)
def test_header_lines_are_read_here_only_far_inside_the_general_parsers_bound(
    filename: bytes, part_type: bytes, read_here: bool
) -> None:
    body = (
        b"--B\r\n"
        b'Content-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
        b"Content-Type: " + part_type + b"\r\n\r\n" + IMAGE + b"\r\n--B--\r\n"
    )
    read = one_file_of_plain_form(body, b"B")
    general = general_reading(b"multipart/form-data; boundary=B", body)
    assert (read is not None) == read_here
    if read is not None:
        assert read == general == (filename.decode(), IMAGE)


def test_a_body_larger_than_the_general_parser_keeps_in_memory_is_left_to_it() -> None:
    _, body = client_form("a.png", b"\0" * MOST_BYTES)
    form_type, _ = client_form("a.png", b"")
    boundary = plain_form_boundary(form_type)
    assert boundary is not None and len(body) > MOST_BYTES
    assert one_file_of_plain_form(body, boundary) is None


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        (b"multipart/form-data; boundary=abc", b"abc"),
        (b"multipart/form-data;boundary=a'()+_,-./:=?Z", b"a'()+_,-./:=?Z"),
        (b"Multipart/Form-Data; boundary=abc", None),
        (b'multipart/form-data; boundary="abc"', None),
        (b"multipart/form-data; boundary=abc; charset=latin-1", None),
        (b"multipart/form-data; Boundary=abc", None),
        (b"multipart/form-data", None),
        (b"multipart/mixed; boundary=abc", None),
        (b"image/png", None),
        (None, None),
    ],
)
def test_only_a_plain_content_type_gives_its_boundary(
    content_type: bytes | None, boundary: bytes | None
) -> None:
    assert plain_form_boundary(content_type) == boundary


NEAR_BYTES = st.sampled_from([b"\r", b"\n", b"\r\n", b"-", b"--", b'"', b";", b"\\", b"\x00", b" "])


FORBIDDEN_IN_NAMES = frozenset(b'";\\') | frozenset(range(0x20)) | {0x7F}


@settings(max_examples=300, deadline=None)
@given(
    boundary=st.sampled_from([b"xYz-42", b"a", b"'()+_,-./:=?", b"9" * 70, b"--x--"]),
    filename=st.one_of(st.binary(max_size=12), st.binary(min_size=250, max_size=260)),
    data=st.lists(st.one_of(NEAR_BYTES, st.binary(max_size=4)), max_size=8).map(b"".join),
    part_type=st.sampled_from([b"", b"Content-Type: image/png\r\n", b"content-type: x/y\r\n"]),
    cut=st.integers(min_value=0, max_value=400),
    insert=st.tuples(st.integers(min_value=0, max_value=400), NEAR_BYTES),
    edit=st.sampled_from(["none", "cut", "insert"]),
)
def test_whatever_is_read_here_is_read_the_same_by_the_general_parser(
    boundary: bytes,
    filename: bytes,
    data: bytes,
    part_type: bytes,
    cut: int,
    insert: tuple[int, bytes],
    edit: str,
) -> None:
    body = (
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="'
        + filename
        + b'"\r\n'
        + part_type
        + b"\r\n"
        + data
        + b"\r\n--"
        + boundary
        + b"--\r\n"
    )
    if edit == "cut":
        body = body[:cut] + body[cut + 1 :]
    elif edit == "insert":
        at, extra = insert
        body = body[:at] + extra + body[at:]
    form_type = b"multipart/form-data; boundary=" + boundary
    assert plain_form_boundary(form_type) == boundary
    read = one_file_of_plain_form(body, boundary)
    plain_name = len(filename) <= 255 and not FORBIDDEN_IN_NAMES & set(filename)
    if edit == "none" and plain_name and b"\r\n--" + boundary not in data:
        assert read is not None  # the plain shape, untouched, is read here
    if read is not None:
        assert general_reading(form_type, body) == read
