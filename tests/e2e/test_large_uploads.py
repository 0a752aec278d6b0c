"""A large dataset archive goes through the API to a bucket of a real S3-compatible server as a
multipart upload, and the API's memory stays flat: its peak resident memory grows by a small
part of the archive's size. TRAINSERVE_TEST_UPLOAD_MIB sets the archive's size (64 MiB here;
docs/performance.md gives the figures for 1 GiB, measured with it set to 1024) and
TRAINSERVE_TEST_UPLOAD_PART_MIB the multipart threshold and part size (8 MiB)."""

import hashlib
import os
import re
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from app.db import session_scope
from app.models import Dataset
from tests.api.test_datasets import colour_archive
from tests.conftest import Env
from tests.e2e.conftest import Process, Service
from tests.s3 import S3Bucket

pytestmark = [pytest.mark.e2e, pytest.mark.database("sqlite")]

MIB = 1024 * 1024
ARCHIVE_MIB = int(os.environ.get("TRAINSERVE_TEST_UPLOAD_MIB", "64"))
PART_MIB = int(os.environ.get("TRAINSERVE_TEST_UPLOAD_PART_MIB", "8"))
# What the API may grow by, whatever the archive's size: a few parts in flight, and buffers.
MAX_GROWTH_MIB = 24


def peak_rss_mib(process: Process) -> float:
    """The process's peak resident memory so far (VmHWM)."""
    status = Path(f"/proc/{process.popen.pid}/status").read_text()
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    assert found is not None, status
    return int(found.group(1)) / 1024


def large_archive(path: Path, mib: int) -> Path:
    """A zip of two classes whose members are 1 MiB each, stored uncompressed: `mib` MiB that
    pass the upload's checks (names and sizes; the pixels are read by the decoder only)."""
    noise = os.urandom(MIB)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for index in range(mib):
            member = f"big/train/{'ab'[index % 2]}/{index}.png"
            archive.writestr(member, index.to_bytes(8, "big") + noise[8:])
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


def post(url: str, path: Path) -> httpx.Response:
    with path.open("rb") as file:  # httpx streams it from the file
        return httpx.post(f"{url}/datasets", files={"file": (path.name, file)}, timeout=600)


def test_a_large_archive_streams_to_the_bucket_and_the_api_memory_stays_flat(
    env: Env, s3_bucket: S3Bucket, service: Service, tmp_path: Path
) -> None:
    service.overrides = {
        "TRAINSERVE_API_WORKERS": "1",  # the process measured is the one that serves
        "TRAINSERVE_MAX_DATASET_BYTES": str(2 * ARCHIVE_MIB * MIB),
        "TRAINSERVE_S3_MULTIPART_THRESHOLD_BYTES": str(PART_MIB * MIB),
    }
    archive = large_archive(tmp_path / "big.zip", ARCHIVE_MIB)
    api = service.start_api()
    # What an upload imports and allocates once, allocated before the measure.
    warm = post(service.url, colour_archive(tmp_path / "small.zip", per_class=2))
    assert warm.status_code == 202, warm.text
    before = peak_rss_mib(api)

    started = time.monotonic()
    response = post(service.url, archive)
    elapsed_s = time.monotonic() - started

    assert response.status_code == 202, response.text
    growth = peak_rss_mib(api) - before
    dataset_id = response.json()["id"]
    size = archive.stat().st_size
    print(
        f"upload of {size / MIB:.0f} MiB in parts of {PART_MIB} MiB, answered in {elapsed_s:.1f} "
        f"s: the API's peak resident memory {before:.0f} MiB before, grew by {growth:.1f} MiB"
    )
    assert growth < MAX_GROWTH_MIB, f"the API grew by {growth:.1f} MiB for {size / MIB:.0f} MiB"
    key = f"datasets/{dataset_id}/upload"
    with session_scope() as session:
        row = session.get_one(Dataset, dataset_id)
        assert (row.upload_key, row.upload_bytes, row.upload_sha256) == (
            key,
            size,
            sha256_of(archive),
        )
    stored = s3_bucket.server.client().head_object(Bucket=s3_bucket.bucket, Key=s3_bucket.name(key))
    parts = -(-size // (PART_MIB * MIB))
    assert (stored["ContentLength"], stored["ETag"].strip('"').split("-")[-1]) == (size, str(parts))
