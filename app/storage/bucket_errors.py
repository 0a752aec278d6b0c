"""What a failed request to a bucket means: the file missing, the request refused (waiting
would not change it), or the store out of reach (waited out, app/storage/outages.py)."""

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
CREDENTIALS_REFUSED_CODES = frozenset(
    {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken"}
)
# Answers that waiting would not change: no outage, said at once (app/storage/outages.py).
REFUSED_CODES = CREDENTIALS_REFUSED_CODES | {
    "NoSuchBucket",
    "InvalidBucketName",
    "KeyTooLongError",
    "InvalidArgument",
    "AllAccessDisabled",
    "AccountProblem",
}
# What a request to the bucket may raise: botocore's errors, and boto3's managed transfers'
# (S3UploadFailedError around a ClientError, RetriesExceededError after a download broke off).
S3_ERRORS = (BotoCoreError, ClientError, Boto3Error)
HTTP_FORBIDDEN = 403


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


def cause_of(exc: BaseException) -> BaseException:
    """The botocore error a boto3 transfer error stands for (S3UploadFailedError wraps a
    ClientError, RetriesExceededError the last failed read), else `exc` itself."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, BotoCoreError | ClientError):
            return seen
        seen = getattr(seen, "last_exception", None) or seen.__cause__ or seen.__context__
    return exc


def is_refused(exc: BaseException) -> bool:
    """Whether the bucket answered no, in a way that waiting would not change."""
    if isinstance(exc, NoCredentialsError):
        return True
    return isinstance(exc, ClientError) and (
        error_code(exc) in REFUSED_CODES or _status(exc) == HTTP_FORBIDDEN
    )


def explain(exc: BaseException, bucket: str) -> str:
    """What a failed request means, in words."""
    if isinstance(exc, NoCredentialsError):
        return (
            "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or another "
            "source boto3 reads: AWS_PROFILE, an instance role...)"
        )
    if isinstance(exc, ClientError):
        code, message = error_code(exc), exc.response.get("Error", {}).get("Message", "")
        detail = f"{code}: {message}" if message else code
        if code == "NoSuchBucket":
            return f"refused: the bucket {bucket} does not exist"
        if code in CREDENTIALS_REFUSED_CODES or _status(exc) == HTTP_FORBIDDEN:
            return f"the credentials were refused ({detail})"
        if code in REFUSED_CODES:
            return f"the request was refused ({detail})"
        return detail
    return f"cannot be reached ({exc})"
