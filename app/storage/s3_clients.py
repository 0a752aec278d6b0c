"""The boto3 clients a bucket uses: one for its requests, retried and with timeouts, and one for
its health probe, which answers fast; and the managed transfer's settings."""

from dataclasses import dataclass
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

MAX_TRANSFER_THREADS = 4
RETRIES = 5
PROBE_CONNECT_TIMEOUT_S = 3
PROBE_READ_TIMEOUT_S = 5
# Every other request: a server that stopped answering is an error (then retried, then an outage
# the worker waits out) rather than a thread blocked for botocore's default of minutes.
CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 60


@dataclass(frozen=True)
class S3Clients:
    requests: Any  # botocore's S3 client
    probe: Any
    transfer: TransferConfig


def s3_clients(
    endpoint_url: str | None, addressing_style: str, multipart_threshold_bytes: int, attempts: int
) -> S3Clients:
    session = boto3.session.Session()

    def client(**config: Any) -> Any:
        # endpoint_url None: boto3 reads AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, else AWS.
        # Checksums only where S3 requires them: botocore's default (since 1.36) sends and
        # expects CRC32 headers that MinIO, Ceph and older servers refuse or leave out.
        options = Config(
            s3={"addressing_style": addressing_style},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            **config,
        )
        return session.client("s3", endpoint_url=endpoint_url or None, config=options)

    return S3Clients(
        requests=client(
            retries={"mode": "standard", "max_attempts": attempts},
            max_pool_connections=2 * MAX_TRANSFER_THREADS,
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=READ_TIMEOUT_S,
        ),
        probe=client(
            retries={"mode": "standard", "max_attempts": 1},
            connect_timeout=PROBE_CONNECT_TIMEOUT_S,
            read_timeout=PROBE_READ_TIMEOUT_S,
        ),
        transfer=TransferConfig(
            multipart_threshold=multipart_threshold_bytes,
            multipart_chunksize=multipart_threshold_bytes,
            max_concurrency=MAX_TRANSFER_THREADS,
        ),
    )
