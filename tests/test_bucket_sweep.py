"""The sweep of a bucket (`trainserve gc`): it removes the objects no row refers to once they are
older than the grace period, and multipart uploads left unfinished a day ago under its own
folders, and nothing else: a real S3-compatible server, real rows in the migrated database."""

import os
import subprocess
import sys
import time
from pathlib import Path

from app.bucket_sweep import sweep_bucket
from app.db import session_scope
from app.models import Dataset, DatasetStatus, Job, JobStatus, WeightsFile
from app.storage.bucket import Bucket
from app.storage.config import get_store
from app.sweep import sweep_unreferenced_files
from tests.conftest import Env
from tests.s3 import S3Bucket
from tests.test_sweep import add_version

TRAINSERVE = str(Path(sys.executable).parent / "trainserve")
HOUR_S = 3600.0
KEPT = [
    "exports/cats/v1/cats-v1.onnx",
    "jobs/1/model-attempt1.pt",
    "jobs/1/test-predictions-attempt1.pt",
    "jobs/2/checkpoints/epoch0001-step00000010-attempt1.pt",  # a running job's newest
    # Published by a running job and not yet recorded: nothing of a running job is touched.
    "jobs/2/checkpoints/epoch0001-step00000015-attempt1.pt",
    "jobs/4/model-attempt2.pt",  # its job is gone, but a version serves it
    "weights/wt-000000000001/weights.pt",
    "datasets/ds-000000000001/images-attempt2.pt",  # a ready dataset's tensors
    # A decoding dataset's upload, and tensors published and not yet recorded: untouched.
    "datasets/ds-000000000002/upload",
    "datasets/ds-000000000002/images-attempt1.pt",
    # A queued dataset whose decoder died (attempts 2): its upload, for the next attempt, and
    # all else in its folder (a worker may claim it and publish there at any moment).
    "datasets/ds-000000000004/upload",
    "datasets/ds-000000000004/images-attempt1.pt",
]
ORPHANS = [
    "datasets/ds-000000000001/images-attempt1.pt",  # of an attempt killed before recording them
    "datasets/ds-000000000001/upload",  # decoded: no longer recorded
    "datasets/ds-000000000003/upload",  # a deleted dataset's, or a row never committed
    "exports/cats/v2/cats-v2.onnx",  # a deleted version's
    "exports/gone/v1/gone-v1.onnx",  # a deleted model's
    "jobs/1/checkpoints/epoch0001-step00000005-attempt1.pt",  # a finished job's, unrecorded
    "jobs/3/model-attempt1.pt",  # a deleted job's
    "weights/wt-000000000002/weights.pt",  # a weights row never committed
]


def add_rows() -> None:
    with session_scope(write=True) as session:
        for job_id, status, files in (
            (1, JobStatus.SUCCEEDED, {"model_path": "jobs/1/model-attempt1.pt"}),
            (2, JobStatus.RUNNING, {"checkpoint_key": KEPT[3]}),
        ):
            session.add(Job(id=job_id, status=status, config={"epochs": 1}, attempts=1, **files))
    add_version("cats", 1, "jobs/1/model-attempt1.pt")
    with session_scope(write=True) as session:
        session.add(
            WeightsFile(
                id="wt-000000000001",
                filename="w.pt",
                format="pytorch",
                size_bytes=10,
                sha256="0" * 64,
                tensor_count=0,
                tensors={},
                parameters=0,
            )
        )
    # A file of no job's: a version's own row is enough to keep it.
    add_version("dogs", 1, "jobs/4/model-attempt2.pt")
    with session_scope(write=True) as session:
        for dataset_id, state, keys in (
            ("ds-000000000001", DatasetStatus.READY, {"tensors_key": KEPT[7]}),
            ("ds-000000000002", DatasetStatus.INGESTING, {"upload_key": KEPT[8]}),
            ("ds-000000000004", DatasetStatus.QUEUED, {"upload_key": KEPT[10], "attempts": 2}),
        ):
            session.add(
                Dataset(
                    id=dataset_id,
                    name="a.zip",
                    kind="images",
                    status=state,
                    options={},
                    upload_bytes=10,
                    **keys,
                )
            )


def test_the_sweep_removes_only_what_no_row_refers_to(
    s3_bucket: S3Bucket, migrated_env: Env
) -> None:
    add_rows()
    store = get_store()
    for key in KEPT + ORPHANS:
        store.publish_bytes(key, b"x" * 10)
    client = s3_bucket.server.client()
    # A deleted job's, a running job's, and one of another user of the bucket.
    for name in (
        s3_bucket.name("jobs/5/model-attempt1.pt"),
        s3_bucket.name("jobs/2/model-attempt1.pt"),
        f"{s3_bucket.prefix}-other/backup.tar",
    ):
        upload = client.create_multipart_upload(Bucket=s3_bucket.bucket, Key=name)
        client.upload_part(
            Bucket=s3_bucket.bucket, Key=name, UploadId=upload["UploadId"], PartNumber=1, Body=b"y"
        )
    data, artifacts = migrated_env.data_dir, migrated_env.artifacts_dir

    # An API killed mid-upload leaves its staged file in the cache folder: gone once stale.
    assert isinstance(store, Bucket)
    stale, fresh = store.cache.temporary_path(), store.cache.temporary_path()
    stale.write_bytes(b"half an archive")
    fresh.write_bytes(b"an archive arriving")
    os.utime(stale, (time.time() - 2 * HOUR_S, time.time() - 2 * HOUR_S))

    kept = sweep_unreferenced_files(data, artifacts, HOUR_S, store)
    assert (kept.bytes, dict(kept.removed)) == (0, {})
    assert (stale.exists(), fresh.exists()) == (False, True)
    assert s3_bucket.stored_keys() == sorted(KEPT + ORPHANS)

    time.sleep(1.1)  # the server's times are in whole seconds
    swept = sweep_unreferenced_files(data, artifacts, 0, store)
    assert str(swept) == (
        "0 unfinished upload(s), 0 folder(s) of deleted datasets, 0 folder(s) of deleted "
        "weights files, 0 folder(s) of deleted jobs, 0 export folder(s) of deleted model "
        "versions, 0 unrecorded file(s) of finished jobs and datasets, 8 object(s) no row "
        f"refers to and 0 unfinished multipart upload(s) in the {store.description}: 80 bytes"
    )
    assert s3_bucket.stored_keys() == sorted(KEPT)
    # Begun a moment ago: perhaps still under way, kept for a day.
    assert len(unfinished(s3_bucket)) == 3

    # Once a day old: the deleted job's is aborted, and only it.
    assert isinstance(store, Bucket)
    assert sweep_bucket(store, time.time(), uploads_older_than_s=0).uploads == 1
    assert unfinished(s3_bucket) == sorted(
        [s3_bucket.name("jobs/2/model-attempt1.pt"), f"{s3_bucket.prefix}-other/backup.tar"]
    )
    ours = client.list_multipart_uploads(Bucket=s3_bucket.bucket, Prefix=s3_bucket.prefix)
    for upload in ours["Uploads"]:
        client.abort_multipart_upload(
            Bucket=s3_bucket.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
        )


def unfinished(s3_bucket: S3Bucket) -> list[str]:
    """The keys of the multipart uploads under way under the test's prefix and its sibling."""
    uploads = s3_bucket.server.client().list_multipart_uploads(
        Bucket=s3_bucket.bucket, Prefix=s3_bucket.prefix
    )
    return sorted(upload["Key"] for upload in uploads.get("Uploads", []))


def test_trainserve_gc_sweeps_the_bucket_after_its_grace_period(
    s3_bucket: S3Bucket, migrated_env: Env
) -> None:
    store = get_store()
    store.publish_bytes("jobs/12/model-attempt1.pt", b"x" * 11)
    env = dict(os.environ)
    swept = "removed 0 unfinished upload(s), 0 folder(s) of deleted datasets, 0 folder(s) of "
    swept += "deleted weights files, 0 folder(s) of deleted jobs, 0 export folder(s) of deleted "
    swept += "model versions, 0 unrecorded file(s) of finished jobs and datasets, {} object(s) "
    swept += "no row refers to and 0 unfinished multipart upload(s) in the "
    swept += f"{store.description}: {{}} bytes\n"
    # Within the grace period (an hour): perhaps a file whose row is being written, kept.
    kept = subprocess.run([TRAINSERVE, "gc"], env=env, capture_output=True, text=True)
    assert (kept.returncode, kept.stdout) == (0, swept.format(0, 0)), kept.stderr
    assert s3_bucket.stored_keys() == ["jobs/12/model-attempt1.pt"]
    time.sleep(1.1)  # the server's times are in whole seconds
    done = subprocess.run(
        [TRAINSERVE, "gc", "--grace", "0"], env=env, capture_output=True, text=True
    )
    assert (done.returncode, done.stdout) == (0, swept.format(1, 11)), done.stderr
    assert s3_bucket.stored_keys() == []


def test_trainserve_gc_says_why_the_bucket_cannot_be_swept(
    s3_bucket: S3Bucket, migrated_env: Env
) -> None:
    env = {**os.environ, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    ended = subprocess.run([TRAINSERVE, "gc"], env=env, capture_output=True, text=True)
    assert (ended.returncode, ended.stdout) == (1, "")
    assert "Traceback" not in ended.stderr
    assert ended.stderr.splitlines()[-1] == (
        f"trainserve sweep: {get_store().description}: could not list jobs/: the credentials "
        "were refused (SignatureDoesNotMatch: The request signature we calculated does not "
        "match the signature you provided. Check your key and signing method.)"
    )
