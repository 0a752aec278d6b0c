"""A bucket whose server misbehaves mid-request, through a proxy in front of the real one: a
download cut off halfway is the store out of reach (waited out, never taken for a bad file, so a
resumed job keeps its checkpoint); a PUT answered 500 is one too, and one answered 403 is a
refusal; each message names the store and the key, never a local temporary path. A single PUT
carries its Content-MD5, and one whose bytes change on the way is not stored."""

import base64
import hashlib
import os
from pathlib import Path

import pytest

from app.jobs.transitions import Lease
from app.storage.bucket import Bucket
from app.storage.cache import FileCache
from app.storage.outages import is_outage
from app.storage.store import StoreError, StoreRefused
from tests.s3 import S3Bucket
from tests.s3_faults import Faults, faulty_proxy
from tests.storage.test_bucket import bucket_store, cached
from workers.job_checkpoints import JobCheckpoints

MIB = 1024 * 1024
KEY = "jobs/8/checkpoints/epoch0001-step00000010-attempt1.pt"


def proxied(bucket: S3Bucket, endpoint: str, cache: Path) -> Bucket:
    # One try per request: the proxy fails every one alike, and botocore's pauses between
    # tries would only make the test slower.
    return Bucket(
        bucket.url,
        FileCache(cache, 100 * MIB),
        endpoint_url=endpoint,
        addressing_style="path",
        attempts=1,
    )


def test_a_download_cut_off_midway_is_an_outage_and_the_checkpoint_is_kept(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    published = bucket_store(s3_bucket, tmp_path / "writer").publish_bytes(KEY, os.urandom(200_000))
    with faulty_proxy(s3_bucket.server.endpoint, Faults(cut_gets=True)) as endpoint:
        reader = proxied(s3_bucket, endpoint, tmp_path / "reader")
        with pytest.raises(StoreError) as raised, reader.open(KEY, published.sha256):
            pass
        assert is_outage(raised.value)
        assert str(raised.value).startswith(
            f"artifact store {s3_bucket.url} at {endpoint}: could not read {KEY}: cannot be "
            "reached ("
        )
        # A resumed job's load raises (to be waited out) rather than starting the job over.
        checkpoints = JobCheckpoints(reader, Lease(job_id=8, owner="w", attempt=2))
        with pytest.raises(StoreError) as loading:
            checkpoints.load(KEY, published.sha256)
        assert is_outage(loading.value)
    assert cached(tmp_path / "reader") == []


@pytest.mark.parametrize(
    ("status", "code", "outage"), [(500, "InternalError", True), (403, "AccessDenied", False)]
)
def test_a_put_the_server_fails_or_refuses_names_the_store_and_the_key(
    s3_bucket: S3Bucket, tmp_path: Path, status: int, code: str, outage: bool
) -> None:
    faults = Faults(put_error=(status, code, "no"))
    with faulty_proxy(s3_bucket.server.endpoint, faults) as endpoint:
        store = proxied(s3_bucket, endpoint, tmp_path / "cache")
        with pytest.raises(StoreError) as raised:
            store.publish_bytes(KEY, b"checkpoint")
        store_name = f"artifact store {s3_bucket.url} at {endpoint}"
        said = f"{code}: no" if outage else f"the credentials were refused ({code}: no)"
        assert str(raised.value) == f"{store_name}: could not store {KEY}: {said}"
        assert is_outage(raised.value) is outage
        assert isinstance(raised.value, StoreRefused) is not outage
        assert str(tmp_path) not in str(raised.value)
        # A worker's probe writes a tiny object: a credential that may only list is caught.
        assert store.problem() is None
        assert store.problem(writes=True) == f"{store_name}: {said}"
    assert s3_bucket.stored_keys() == []
    assert cached(tmp_path / "cache") == []


def test_a_put_carries_its_md5_and_one_changed_on_the_way_is_not_stored(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    data = b"checkpoint bytes"
    faults = Faults()
    with faulty_proxy(s3_bucket.server.endpoint, faults) as endpoint:
        store = proxied(s3_bucket, endpoint, tmp_path / "cache")
        store.publish_bytes(KEY, data)
        faults.damage_puts = True
        with pytest.raises(StoreError) as raised:
            store.publish_bytes("jobs/8/model-attempt1.pt", data)
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    assert faults.put_md5s == [md5, md5]
    assert is_outage(raised.value)  # sent again, after a pause, by a job
    assert str(raised.value).startswith(
        f"artifact store {s3_bucket.url} at {endpoint}: could not store jobs/8/model-attempt1.pt: "
    )
    assert s3_bucket.stored_keys() == [KEY]
