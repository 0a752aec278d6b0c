"""The artifact store as an S3-compatible bucket (AWS S3, MinIO, SeaweedFS, Ceph...), through
boto3: endpoint, region and credentials from the AWS variables (or TRAINSERVE_S3_ENDPOINT_URL).

A publication is one PUT, or a multipart upload above TRAINSERVE_S3_MULTIPART_THRESHOLD_BYTES
(boto3's managed transfer, which reads the file part by part): S3 shows an object only once it
is complete. A single PUT carries the file's Content-MD5, which the server checks against the
bytes it received (refusing them otherwise); a multipart upload is checked by its stored size
only. The file's sha256 goes in the object's metadata and is read back with the size once it is
stored, but it is what was sent, not a digest of what is stored: the stored bytes are checked
against the sha256 the database recorded by every reader, before any is used. Reads go through
a local cache named by sha256 (app/storage/cache.py), filled only by files whose bytes matched,
and checked again at every use, as the local folder's files are.
"""

import contextlib
import logging
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from botocore.exceptions import ClientError

from app.storage.bucket_errors import (
    MISSING_CODES,
    S3_ERRORS,
    cause_of,
    error_code,
    explain,
    is_refused,
)
from app.storage.cache import FileCache
from app.storage.locations import parse_bucket_url, without_credentials
from app.storage.s3_clients import RETRIES, s3_clients
from app.storage.store import (
    ArtifactMissing,
    ArtifactStore,
    Published,
    StoredObject,
    StoreError,
    StoreRefused,
    UnfinishedUpload,
    check_key,
    content_md5,
    damaged,
    file_digest,
    path_of_open,
)

log = logging.getLogger("trainserve.storage")

SHA256_METADATA = "sha256"  # x-amz-meta-sha256
DELETE_BATCH = 1000  # the most keys one DeleteObjects takes
# A tiny object the worker's probe writes and deletes: a credential that may list but not
# write is caught before a job is claimed, not at its first checkpoint.
PROBE_KEY = "probe/write-check"


class Bucket(ArtifactStore):
    def __init__(
        self,
        url: str,
        cache: FileCache,
        *,
        endpoint_url: str | None = None,
        addressing_style: str = "auto",
        multipart_threshold_bytes: int = 64 * 1024 * 1024,
        attempts: int = RETRIES,
    ) -> None:
        self.bucket, self.prefix = parse_bucket_url(url)
        self.cache = cache
        clients = s3_clients(endpoint_url, addressing_style, multipart_threshold_bytes, attempts)
        self.client, self.probe, self.transfer = clients.requests, clients.probe, clients.transfer
        location = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        # Named in logs, job errors and /readyz: never with credentials (AWS_ENDPOINT_URL may
        # hold them; the settings refuse them in TRAINSERVE_S3_ENDPOINT_URL).
        endpoint = without_credentials(self.client.meta.endpoint_url)
        self.description = f"artifact store {location} at {endpoint}"

    def _object(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _key(self, name: str) -> str:
        return name[len(self.prefix) + 1 :] if self.prefix else name

    def _failed(self, what: str, exc: Exception) -> StoreError:
        """The error to raise for a failed request: StoreRefused when the bucket answered no,
        else a StoreError (the store out of reach, waited out by the worker)."""
        cause = cause_of(exc)
        message = f"{self.description}: {what}: {self.explain(cause)}"
        return StoreRefused(message) if is_refused(cause) else StoreError(message)

    def staging_path(self, key: str) -> Path:
        check_key(key)
        return self.cache.temporary_path()

    def publish(self, staged: Path, key: str) -> Published:
        name = self._object(key)
        with staged.open("rb") as file:
            size, sha256 = file_digest(file)
        metadata = {SHA256_METADATA: sha256}
        try:
            if size < self.transfer.multipart_threshold:
                with staged.open("rb") as body:
                    # The server checks the bytes it got against their MD5: a PUT damaged on
                    # the way is refused (BadDigest), not stored.
                    self.client.put_object(
                        Bucket=self.bucket,
                        Key=name,
                        Body=body,
                        Metadata=metadata,
                        ContentMD5=content_md5(staged),
                    )
            else:
                self.client.upload_file(
                    str(staged),
                    self.bucket,
                    name,
                    ExtraArgs={"Metadata": metadata},
                    Config=self.transfer,
                )
            stored = self.client.head_object(Bucket=self.bucket, Key=name)
        except S3_ERRORS as exc:
            raise self._failed(f"could not store {key}", exc) from exc
        held = (stored["ContentLength"], stored.get("Metadata", {}).get(SHA256_METADATA))
        if held != (size, sha256):
            raise StoreError(
                f"{self.description}: {key} was not stored as sent: the bucket holds {held[0]} "
                f"bytes with sha256 {held[1]}, not {size} bytes with sha256 {sha256}"
            )
        return Published(key, size, sha256)

    @contextlib.contextmanager
    def open(self, key: str, sha256: str | None) -> Iterator[BinaryIO]:
        expected = sha256 or self._recorded_sha256(key)
        file = None if expected is None else self.cache.open_checked(expected, key)
        if file is None:
            file = self._download(key, expected)
        with file:
            yield file

    @contextlib.contextmanager
    def open_path(self, key: str, sha256: str) -> Iterator[Path]:
        # Held open, locked: no eviction takes it. Its name in the cache (where /proc is not).
        with self.open(key, sha256) as file:
            yield path_of_open(file, self.cache.path(sha256), self.description)

    def _recorded_sha256(self, key: str) -> str | None:
        """The sha256 the publisher kept in the object's metadata (None for another's object)."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._object(key))
        except S3_ERRORS as exc:
            raise self._read_error(key, exc) from exc
        return head.get("Metadata", {}).get(SHA256_METADATA)

    def _read_error(self, key: str, exc: Exception) -> StoreError:
        cause = cause_of(exc)
        if isinstance(cause, ClientError) and error_code(cause) in MISSING_CODES:
            return ArtifactMissing(f"{self.description}: {key} is missing")
        return self._failed(f"could not read {key}", exc)

    def _download(self, key: str, expected: str | None) -> BinaryIO:
        temporary = self.cache.temporary_path()
        try:
            try:
                self.client.download_file(
                    self.bucket, self._object(key), str(temporary), Config=self.transfer
                )
            except S3_ERRORS as exc:
                raise self._read_error(key, exc) from exc
            if expected is None:  # not published here: read once, not cached
                return temporary.open("rb")
            with temporary.open("rb") as file:
                _, actual = file_digest(file)
            if actual != expected:
                refused = damaged(self.description, key, actual, expected)
                log.error("%s", refused)
                raise refused
            return self.cache.add(temporary, expected)
        finally:
            temporary.unlink(missing_ok=True)  # an open file keeps its bytes

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._object(key))
        except S3_ERRORS as exc:
            raise self._failed(f"could not delete {key}", exc) from exc

    def delete_prefix(self, prefix: str) -> None:
        keys = [stored.key for stored in self.list(prefix)]
        for start in range(0, len(keys), DELETE_BATCH):
            batch = [{"Key": self._object(key)} for key in keys[start : start + DELETE_BATCH]]
            try:
                answer = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            except S3_ERRORS as exc:
                raise self._failed(f"could not delete {prefix}/", exc) from exc
            if errors := answer.get("Errors", []):  # a 200 may still refuse some keys
                first = errors[0]
                raise StoreError(
                    f"{self.description}: could not delete {prefix}/: {len(errors)} object(s) "
                    f"refused, {self._key(first['Key'])} first ({first.get('Code')}: "
                    f"{first.get('Message')})"
                )

    def list(self, prefix: str) -> Iterator[StoredObject]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._object(prefix) + "/"
        )
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    modified: datetime = item["LastModified"]
                    yield StoredObject(self._key(item["Key"]), item["Size"], modified.timestamp())
        except S3_ERRORS as exc:
            raise self._failed(f"could not list {prefix}/", exc) from exc

    def unfinished_uploads(self, prefix: str) -> Iterator[UnfinishedUpload]:
        """The multipart uploads begun under `prefix/` and neither completed nor aborted (a
        process that died mid-upload leaves its parts, unseen by a listing)."""
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self._object(prefix) + "/"
        )
        try:
            for page in pages:
                for upload in page.get("Uploads", []):
                    started: datetime = upload["Initiated"]
                    key = self._key(upload["Key"])
                    yield UnfinishedUpload(key, upload["UploadId"], started.timestamp())
        except S3_ERRORS as exc:
            raise self._failed(f"could not list unfinished uploads under {prefix}/", exc) from exc

    def abort_upload(self, upload: UnfinishedUpload) -> None:
        try:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self._object(upload.key), UploadId=upload.upload_id
            )
        except S3_ERRORS as exc:
            raise self._failed(f"could not abort the upload of {upload.key}", exc) from exc

    def remove_staged(self, prefix: str) -> None:
        pass  # staged in the cache folder, whose stale temporaries the sweep removes

    def problem(self, *, writes: bool = False) -> str | None:
        # Listing checks the endpoint, the credentials, the bucket and the right to list at once;
        # a tiny object written and deleted, the right to write (asked by workers only).
        try:
            self.probe.list_objects_v2(
                Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else "", MaxKeys=1
            )
            if writes:
                name = self._object(PROBE_KEY)
                self.probe.put_object(Bucket=self.bucket, Key=name, Body=b"")
                self.probe.delete_object(Bucket=self.bucket, Key=name)
        except S3_ERRORS as exc:
            return f"{self.description}: {self.explain(cause_of(exc))}"
        return None

    def explain(self, exc: BaseException) -> str:
        """What a failed request means, in words."""
        return explain(exc, self.bucket)
