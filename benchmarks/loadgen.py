"""A bounded HTTP load generator: N keep-alive connections send a fixed number of requests.

Runs in its own process (so that it does not share an interpreter with the server) and prints
one JSON line: requests, seconds, requests/s, p50/p95/p99 latency in ms, status counts.
Usage: python benchmarks/loadgen.py PORT PATH BODY_FILE CONTENT_TYPE CONCURRENCY REQUESTS
"""

import asyncio
import json
import sys
import time
from pathlib import Path


async def one_connection(
    port: int, request: bytes, count: int, latencies: list[float], statuses: dict[int, int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(count):
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index]


async def run(
    port: int, path: str, body: bytes, content_type: str, concurrency: int, requests: int
) -> dict[str, object]:
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    per_connection = [
        requests // concurrency + (i < requests % concurrency) for i in range(concurrency)
    ]
    started = time.perf_counter()
    await asyncio.gather(
        *(one_connection(port, request, n, latencies, statuses) for n in per_connection if n)
    )
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "seconds": round(elapsed, 3),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * percentile(latencies, 0.50), 2),
        "p95_ms": round(1000 * percentile(latencies, 0.95), 2),
        "p99_ms": round(1000 * percentile(latencies, 0.99), 2),
        "statuses": statuses,
    }


if __name__ == "__main__":
    port, path, body_file, content_type, concurrency, requests = sys.argv[1:7]
    result = asyncio.run(
        run(
            int(port),
            path,
            Path(body_file).read_bytes(),
            content_type,
            int(concurrency),
            int(requests),
        )
    )
    print(json.dumps(result))
