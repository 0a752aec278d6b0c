"""A bucket of a real S3-compatible server (SeaweedFS on loopback) as the artifact store:
publication, verified reads through the local cache, multipart uploads, and what its health
probe says when the bucket cannot be used."""

import hashlib
import os
from pathlib import Path

import pytest

from app.settings import get_settings
from app.storage.bucket import Bucket
from app.storage.cache import FileCache
from app.storage.config import get_store
from app.storage.store import ArtifactDamaged, ArtifactMissing, Published
from tests.s3 import S3Bucket

MIB = 1024 * 1024


def bucket_store(
    bucket: S3Bucket,
    cache: Path,
    *,
    url: str | None = None,
    cache_bytes: int = 100 * MIB,
    threshold: int = 64 * MIB,
) -> Bucket:
    return Bucket(
        url or bucket.url,
        FileCache(cache, cache_bytes),
        endpoint_url=bucket.server.endpoint,
        addressing_style="path",
        multipart_threshold_bytes=threshold,
    )


def read(store: Bucket, key: str, sha256: str | None) -> bytes:
    with store.open(key, sha256) as file:
        return file.read()


def cached(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_the_settings_name_the_bucket(s3_bucket: S3Bucket) -> None:
    store = get_store()
    assert isinstance(store, Bucket)
    assert (store.bucket, store.prefix) == ("trainserve-test", s3_bucket.prefix)
    assert store.description == (f"artifact store {s3_bucket.url} at {s3_bucket.server.endpoint}")
    assert store.cache.folder == get_settings().artifacts_dir / "bucket-cache"
    assert store.problem() is None


def test_a_published_file_is_read_back_verified_then_from_the_cache(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    store = bucket_store(s3_bucket, tmp_path / "cache")
    data = os.urandom(300_000)
    sha256 = hashlib.sha256(data).hexdigest()
    published = store.publish_bytes("jobs/3/model-attempt1.pt", data)
    assert published == Published("jobs/3/model-attempt1.pt", 300_000, sha256)
    assert s3_bucket.stored_keys() == ["jobs/3/model-attempt1.pt"]
    head = s3_bucket.server.client().head_object(
        Bucket=s3_bucket.bucket, Key=s3_bucket.name("jobs/3/model-attempt1.pt")
    )
    assert (head["ContentLength"], head["Metadata"]) == (300_000, {"sha256": sha256})
    assert cached(tmp_path / "cache") == []  # staged copies do not stay

    assert read(store, "jobs/3/model-attempt1.pt", sha256) == data
    assert cached(tmp_path / "cache") == [sha256]
    # Gone from the bucket, still read: from the cache, by its sha256.
    store.delete("jobs/3/model-attempt1.pt")
    assert s3_bucket.stored_keys() == []
    assert read(store, "jobs/3/model-attempt1.pt", sha256) == data
    # Without a recorded digest, the one the publisher kept in the object's metadata counts.
    store.publish_bytes("exports/m/v1/m-v1.onnx", b"onnx")
    assert read(store, "exports/m/v1/m-v1.onnx", None) == b"onnx"
    assert cached(tmp_path / "cache") == sorted([sha256, hashlib.sha256(b"onnx").hexdigest()])


def test_a_cached_copy_is_checked_at_every_use_and_fetched_again_when_damaged(
    s3_bucket: S3Bucket, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = bucket_store(s3_bucket, tmp_path / "cache")
    data = os.urandom(10_000)
    published = store.publish_bytes("jobs/3/model-attempt1.pt", data)
    assert read(store, published.key, published.sha256) == data
    copy = tmp_path / "cache" / published.sha256
    copy.write_bytes(b"x" + data[1:])  # the disk changed a byte
    assert read(store, published.key, published.sha256) == data
    assert copy.read_bytes() == data
    damaged_sha256 = hashlib.sha256(b"x" + data[1:]).hexdigest()
    assert [r.getMessage() for r in caplog.records if r.name == "trainserve.storage"] == [
        f"the cache {tmp_path / 'cache'}: {published.key} is damaged: its sha256 is "
        f"{damaged_sha256}, not the {published.sha256} recorded when it was written; it was "
        "not used"
    ]


@pytest.mark.parametrize("damage", ["a changed byte", "cut short"])
def test_an_object_changed_in_the_bucket_is_refused_and_never_cached(
    s3_bucket: S3Bucket, tmp_path: Path, damage: str
) -> None:
    writer = bucket_store(s3_bucket, tmp_path / "writer")
    data = os.urandom(100_000)
    good = writer.publish_bytes("jobs/4/checkpoints/epoch0001-step00000010-attempt1.pt", data)
    bad_data = data[:50_000] if damage == "cut short" else data[:-1] + bytes([data[-1] ^ 1])
    s3_bucket.server.client().put_object(
        Bucket=s3_bucket.bucket, Key=s3_bucket.name(good.key), Body=bad_data
    )

    reader = bucket_store(s3_bucket, tmp_path / "reader")  # another machine: an empty cache
    with pytest.raises(ArtifactDamaged) as refused:
        read(reader, good.key, good.sha256)
    bad = hashlib.sha256(bad_data).hexdigest()
    assert str(refused.value) == (
        f"artifact store {s3_bucket.url} at {s3_bucket.server.endpoint}: {good.key} is "
        f"damaged: its sha256 is {bad}, not the {good.sha256} recorded when it was written; it "
        "was not used"
    )
    assert cached(tmp_path / "reader") == []


def test_a_missing_object_is_said_so(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    store = bucket_store(s3_bucket, tmp_path / "cache")
    with pytest.raises(ArtifactMissing) as missing:
        read(store, "jobs/5/model-attempt1.pt", "0" * 64)
    assert str(missing.value) == f"{store.description}: jobs/5/model-attempt1.pt is missing"


def test_a_file_above_the_threshold_goes_up_in_parts(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    store = bucket_store(s3_bucket, tmp_path / "cache", threshold=5 * MIB)
    data = os.urandom(11 * MIB)
    published = store.publish_bytes("jobs/6/model-attempt1.pt", data)
    parts = s3_bucket.server.client().head_object(
        Bucket=s3_bucket.bucket, Key=s3_bucket.name(published.key), PartNumber=1
    )
    assert parts["PartsCount"] == 3  # 5 + 5 + 1 MiB
    fresh = bucket_store(s3_bucket, tmp_path / "fresh", threshold=5 * MIB)
    assert read(fresh, published.key, hashlib.sha256(data).hexdigest()) == data


def test_the_cache_keeps_to_its_size_least_recently_used_first_never_a_file_in_use(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    writer = bucket_store(s3_bucket, tmp_path / "writer")
    files = {name: os.urandom(100_000) for name in "abc"}
    sha = {
        name: writer.publish_bytes(f"jobs/1/{name}.pt", data).sha256 for name, data in files.items()
    }
    store = bucket_store(s3_bucket, tmp_path / "cache", cache_bytes=250_000)

    for name in "abc":  # c's arrival makes it 300,000 bytes: a goes
        assert read(store, f"jobs/1/{name}.pt", sha[name]) == files[name]
    assert cached(tmp_path / "cache") == sorted([sha["b"], sha["c"]])

    with store.open("jobs/1/b.pt", sha["b"]) as in_use:  # b, least recently used, is open
        assert read(store, "jobs/1/c.pt", sha["c"]) == files["c"]
        assert read(store, "jobs/1/a.pt", sha["a"]) == files["a"]  # so c goes instead
        assert cached(tmp_path / "cache") == sorted([sha["a"], sha["b"]])
        assert in_use.read() == files["b"]
    assert store.cache.size() == 200_000


def test_listing_and_deleting_under_a_prefix(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    store = bucket_store(s3_bucket, tmp_path / "cache")
    for key in ("jobs/1/a.pt", "jobs/1/checkpoints/b.pt", "jobs/2/c.pt", "exports/m/v1/m.onnx"):
        store.publish_bytes(key, key.encode())
    assert [(o.key, o.size) for o in store.list("jobs")] == [
        ("jobs/1/a.pt", 11),
        ("jobs/1/checkpoints/b.pt", 23),
        ("jobs/2/c.pt", 11),
    ]
    store.delete_prefix("jobs/1")
    store.delete("jobs/2/c.pt")
    store.delete("jobs/2/c.pt")  # already gone: nothing happens
    assert s3_bucket.stored_keys() == ["exports/m/v1/m.onnx"]


def test_the_probe_names_the_store_and_what_is_wrong(
    s3_bucket: S3Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = s3_bucket.server.endpoint
    missing = bucket_store(s3_bucket, tmp_path / "c1", url="s3://no-such-bucket/models")
    assert missing.problem() == (
        f"artifact store s3://no-such-bucket/models at {endpoint}: refused: the bucket "
        "no-such-bucket does not exist"
    )
    # Each credential spoilt in turn, the one before it left spoilt.
    for name, value, said in [
        (
            "AWS_SECRET_ACCESS_KEY",
            "not-the-secret",
            "the credentials were refused (SignatureDoesNotMatch: The request signature we "
            "calculated does not match the signature you provided. Check your key and signing "
            "method.)",
        ),
        (
            "AWS_ACCESS_KEY_ID",
            "nobody",
            "the credentials were refused (InvalidAccessKeyId: The access key ID you provided "
            "does not exist in our records.)",
        ),
        (
            "AWS_SECRET_ACCESS_KEY and AWS_ACCESS_KEY_ID",
            None,
            "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or another source "
            "boto3 reads: AWS_PROFILE, an instance role...)",
        ),
    ]:
        for variable in name.split(" and "):
            if value is None:
                monkeypatch.delenv(variable)
            else:
                monkeypatch.setenv(variable, value)
        store = bucket_store(s3_bucket, tmp_path / name)
        assert store.problem() == f"artifact store {s3_bucket.url} at {endpoint}: {said}"


def test_the_probe_says_when_the_endpoint_does_not_answer(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    store = Bucket("s3://models", FileCache(tmp_path, 0), endpoint_url="http://127.0.0.1:9")
    problem = store.problem()
    assert problem is not None
    assert problem.startswith(
        "artifact store s3://models at http://127.0.0.1:9: cannot be reached (Could not "
        'connect to the endpoint URL: "http://127.0.0.1:9/models'
    )


@pytest.mark.parametrize("fate", ["evicted", "replaced by another process's copy"])
def test_a_path_handed_out_reaches_the_verified_file_whatever_becomes_of_its_cached_name(
    s3_bucket: S3Bucket, tmp_path: Path, fate: str
) -> None:
    store = bucket_store(s3_bucket, tmp_path / "cache")
    data = os.urandom(10_000)
    published = store.publish_bytes("datasets/d1/upload-attempt1.zip", data)
    copy = tmp_path / "cache" / published.sha256
    with store.open_path(published.key, published.sha256) as path:
        if fate == "evicted":
            copy.unlink()
        else:  # another process's download of the same digest, renamed onto the name
            other = tmp_path / "cache" / "other"
            other.write_bytes(b"not what was verified")
            os.replace(other, copy)
        assert path.read_bytes() == data
