"""A worker's decoding when its decoder cannot use the bucket (a real S3-compatible server): a
refusal hands the dataset back uncounted with its upload kept; an outage past the limit counts
the attempt; either way the worker asks the store again before it claims anything."""

import threading

import pytest

from app.datasets.state import create_dataset
from app.db import session_scope
from app.models import Dataset, DatasetStatus
from app.storage.config import get_store
from app.storage.health import StoreHealth
from tests.conftest import Env
from tests.s3 import S3Bucket
from workers.ingest import Ingest

pytestmark = pytest.mark.database("sqlite")

UPLOAD_KEY = "datasets/ds-0123456789ab/upload"


class WatchedHealth(StoreHealth):
    """The worker's StoreHealth, counting the times it is told its answer is stale."""

    forgotten = 0

    def forget(self) -> None:
        self.forgotten += 1
        super().forget()


@pytest.mark.parametrize("fault", ["refused", "out of reach"])
def test_a_decoder_that_cannot_use_the_bucket(
    s3_bucket: S3Bucket, migrated_env: Env, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    store = get_store()
    with session_scope(write=True) as session:
        create_dataset(
            session,
            "ds-0123456789ab",
            name="a.zip",
            kind="images",
            options={"image_size": 8, "test_fraction": 0.5, "seed": 0},
            upload=store.publish_bytes(UPLOAD_KEY, b"an archive"),
        )
    health = WatchedHealth(store, writes=True)
    ingest = Ingest(migrated_env.settings(), store, health)
    claimed = ingest.claim("w1")
    assert claimed is not None
    # Only the decoding process sees the fault: it reads its settings from the environment.
    if fault == "refused":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    else:
        monkeypatch.setenv("TRAINSERVE_S3_ENDPOINT_URL", "http://127.0.0.1:9")
        monkeypatch.setenv("TRAINSERVE_STORE_OUTAGE_LIMIT_SECONDS", "0.5")
    ingest.run(claimed, threading.Event())

    with session_scope() as session:
        dataset = session.get(Dataset, "ds-0123456789ab")
        assert dataset is not None
        attempts = [(a["attempt"], a["outcome"]) for a in dataset.attempt_history]
        assert (dataset.status, dataset.attempts) == (DatasetStatus.QUEUED, len(attempts))
    assert attempts == ([] if fault == "refused" else [(1, "decoder died")])
    assert s3_bucket.stored_keys() == [UPLOAD_KEY]
    assert health.forgotten == 1
