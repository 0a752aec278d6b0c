"""The one file of a plain multipart form, read with a few byte searches.

What clients send to /predict (curl -F, requests, httpx, browsers) is one form in one shape: an
opening boundary, one part named `file` with a quoted file name and perhaps a Content-Type, the
image, the closing boundary. The general parser reads it in Python callbacks and spools the file
through a temporary-file object: a sixth of the event loop's time at 64 connections. Here the
one shape is recognised byte for byte and anything else, however slightly different, is left to
the general parser. What is recognised here reads the same there (the same field, file name and
bytes; tests/serving/test_plain_form.py checks it on mutated forms), and what is not is read
there.
"""

import re

# The request's Content-Type with its boundary (RFC 2046's characters, unquoted) and nothing else.
# In lower case only: older releases of the general parser do not lower the media type, and read
# no form from "Multipart/Form-Data".
FORM_TYPE = re.compile(rb"multipart/form-data; ?boundary=([0-9A-Za-z'()+_,\-./:=?]{1,70})")
# The part's headers: its disposition, a plain file name (no quotes, escapes, separators or
# control bytes, so no reading of it can differ), and perhaps a Content-Type, which nothing reads.
# Both lines are bounded far inside the general parser's own bound on a header line (4 KiB in
# python-multipart), which refuses a longer one: a line it refuses is never read here.
PART_HEAD = re.compile(
    rb'(?i:content-disposition): form-data; name="file"; '
    rb'filename="([^\x00-\x1f\x7f";\\]{0,255})"\r\n'
    rb"(?:(?i:content-type): [!-~][ -~]{0,126}\r\n)?"
    rb"\r\n"
)
CLOSINGS = (b"--", b"--\r\n")
# Bodies up to this size are read here: the general parser also keeps files of up to 1 MiB in
# memory, so reading here holds no more than it would.
MOST_BYTES = 1024 * 1024


def plain_form_boundary(content_type: bytes | None) -> bytes | None:
    """The boundary of a request whose Content-Type is a multipart form's in the plain shape."""
    if content_type is None:
        return None
    matched = FORM_TYPE.fullmatch(content_type)
    return matched.group(1) if matched else None


def one_file_of_plain_form(body: bytes, boundary: bytes) -> tuple[str, bytes] | None:
    """The file name and bytes of the body's one `file` part; None for any other body."""
    opening = b"--" + boundary + b"\r\n"
    if len(body) > MOST_BYTES or not body.startswith(opening):
        return None
    head = PART_HEAD.match(body, len(opening))
    if head is None:
        return None
    delimiter = b"\r\n--" + boundary
    end = body.find(delimiter, head.end())
    if end < 0 or body[end + len(delimiter) :] not in CLOSINGS:
        return None
    return _decoded(head.group(1)), body[head.end() : end]


def _decoded(filename: bytes) -> str:
    """The file name as the general parser decodes it (UTF-8, else Latin-1)."""
    try:
        return filename.decode("utf-8")
    except UnicodeDecodeError:
        return filename.decode("latin-1")
