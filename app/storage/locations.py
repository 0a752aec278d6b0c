"""Where a bucket is, as the settings name it: s3://BUCKET/PREFIX and an http(s) endpoint.
Neither may hold credentials: they are named in logs, job errors and the unauthenticated
/readyz, so credentials come only from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or
another source boto3 reads)."""

from urllib.parse import urlsplit, urlunsplit

CREDENTIALS_ELSEWHERE = (
    "give the credentials as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead"
)


def parse_bucket_url(url: str) -> tuple[str, str]:
    """(bucket, prefix) of s3://bucket/prefix; ValueError without a bucket, or with
    credentials (user:secret@bucket), which the message does not repeat."""
    if not url.startswith("s3://"):
        raise ValueError(f"{url!r} is not s3://BUCKET or s3://BUCKET/PREFIX")
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if "@" in bucket:
        raise ValueError(f"must not hold credentials (USER:SECRET@): {CREDENTIALS_ELSEWHERE}")
    if not bucket:
        raise ValueError(f"({url}) names no bucket: s3://BUCKET/PREFIX")
    return bucket, prefix.strip("/")


def has_credentials(url: str) -> bool:
    """Whether an endpoint's URL holds a user or a password (http://KEY:SECRET@host)."""
    parts = urlsplit(url)
    return parts.username is not None or parts.password is not None


def without_credentials(url: str) -> str:
    """The URL with any user and password taken out, to be named in a message."""
    parts = urlsplit(url)
    if not has_credentials(url):
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))
