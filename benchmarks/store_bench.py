"""How fast the artifact store writes and reads the files a job makes (a small CNN's checkpoint,
a ResNet-18's model and checkpoint, a file large enough for a multipart upload): a bucket of an
S3-compatible server against the local folder, in the same run, interleaved and repeated.

A write is a publication of a file already on disk (what a worker does once torch.save has
written it): for the bucket one PUT with its Content-MD5, or a multipart upload above the
threshold, then the size and sha256 read back; for the local folder an fsync and a rename. A read
is a verified open with an empty cache (for the bucket: the download, its sha256 checked, the
copy added to the cache) and the bytes read.

    TRAINSERVE_TEST_S3_URL=$(scripts/seaweedfs.sh) .venv/bin/python benchmarks/store_bench.py

Needs an S3-compatible server (scripts/seaweedfs.sh starts one on loopback); it makes a bucket
of its own there and removes it at the end.
"""

import argparse
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

from app.storage.bucket import Bucket
from app.storage.cache import FileCache
from app.storage.local import LocalFolder
from app.storage.store import ArtifactStore

MIB = 1024 * 1024
# A tutorial CNN's checkpoint; a ResNet-18's model; its checkpoint (weights and momentum); a
# file above the default 64 MiB multipart threshold.
DEFAULT_SIZES_MIB = [0.5, 45.0, 90.0, 256.0]
CACHE_BYTES = 4096 * MIB


def main() -> None:
    args = parse_args()
    endpoint = credentials_from(args.s3_url)
    bucket_name = f"store-bench-{uuid.uuid4().hex[:8]}"
    client = boto3.client(
        "s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"})
    )
    client.create_bucket(Bucket=bucket_name)
    scratch = Path(tempfile.mkdtemp(prefix="store-bench-", dir=args.scratch))
    try:
        stores: dict[str, Callable[[Path], ArtifactStore]] = {
            "bucket": lambda cache: Bucket(
                f"s3://{bucket_name}/bench",
                FileCache(cache, CACHE_BYTES),
                endpoint_url=endpoint,
                addressing_style="path",
                multipart_threshold_bytes=int(args.threshold_mib * MIB),
            ),
            "local folder": lambda _: LocalFolder(scratch / "local"),
        }
        writes: dict[tuple[str, float], list[float]] = {}
        reads: dict[tuple[str, float], list[float]] = {}
        for round_number in range(args.rounds):
            for size in args.sizes:
                source = scratch / "source"
                source.write_bytes(os.urandom(int(size * MIB)))
                for name, make in stores.items():
                    cache = scratch / f"cache-{uuid.uuid4().hex[:8]}"  # empty: reads download
                    store = make(cache)
                    key = f"jobs/1/round{round_number}-{size}.pt"
                    write_s, sha256 = timed_write(store, source, key)
                    read_s = timed_read(store, key, sha256)
                    writes.setdefault((name, size), []).append(write_s)
                    reads.setdefault((name, size), []).append(read_s)
                    store.delete(key)
                    shutil.rmtree(cache, ignore_errors=True)
        report(stores, args.sizes, writes, reads, args.rounds)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket_name):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=bucket_name, Key=item["Key"])
        client.delete_bucket(Bucket=bucket_name)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--s3-url", default=os.environ.get("TRAINSERVE_TEST_S3_URL"))
    parser.add_argument("--sizes", type=float, nargs="+", default=DEFAULT_SIZES_MIB)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threshold-mib", type=float, default=64.0)
    parser.add_argument("--scratch", default=None, help="where the files are written")
    args = parser.parse_args()
    if not args.s3_url:
        parser.error("set TRAINSERVE_TEST_S3_URL or --s3-url (scripts/seaweedfs.sh prints one)")
    return args


def credentials_from(url: str) -> str:
    """The endpoint of http://ACCESS_KEY:SECRET_KEY@HOST:PORT; its credentials go where boto3
    looks for them, as a deployment's would."""
    parts = urlsplit(url)
    os.environ["AWS_ACCESS_KEY_ID"] = parts.username or ""
    os.environ["AWS_SECRET_ACCESS_KEY"] = parts.password or ""
    os.environ.setdefault("AWS_REGION", "us-east-1")
    return f"{parts.scheme}://{parts.hostname}:{parts.port}"


def timed_write(store: ArtifactStore, source: Path, key: str) -> tuple[float, str]:
    staged = store.staging_path(key)
    shutil.copyfile(source, staged)  # not timed: torch.save's part
    started = time.perf_counter()
    try:
        published = store.publish(staged, key)
    finally:
        staged.unlink(missing_ok=True)
    return time.perf_counter() - started, published.sha256


def timed_read(store: ArtifactStore, key: str, sha256: str) -> float:
    started = time.perf_counter()
    with store.open(key, sha256) as file:
        while file.read(MIB):
            pass
    return time.perf_counter() - started


def report(
    stores: Iterable[str],
    sizes: list[float],
    writes: dict[tuple[str, float], list[float]],
    reads: dict[tuple[str, float], list[float]],
    rounds: int,
) -> None:
    print(f"\nmedian of {rounds} interleaved rounds (range in brackets)")
    heads = ("write ms", "write MB/s", "read ms", "read MB/s")
    print(f"{'store':<13} {'MiB':>6}  {heads[0]:>18} {heads[1]:>11}  {heads[2]:>18} {heads[3]:>10}")
    for size in sizes:
        for name in stores:
            write, read = writes[(name, size)], reads[(name, size)]
            print(
                f"{name:<13} {size:>6g}  {span(write):>18} {rate(size, write):>11}  "
                f"{span(read):>18} {rate(size, read):>10}"
            )


def span(seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return f"{statistics.median(ms):.1f} [{min(ms):.1f}-{max(ms):.1f}]"


def rate(size_mib: float, seconds: list[float]) -> str:
    return f"{size_mib * MIB / statistics.median(seconds) / 1e6:.0f}"


if __name__ == "__main__":
    main()
