"""A bounded HTTP load generator: N keep-alive connections send a fixed number of requests.

Runs in its own process (so that it does not share an interpreter with the server) and prints
one JSON line: requests, seconds, requests/s, p50/p95/p99 latency in ms, status counts. The
requests come from a file that benchmarks/bench_images.py wrote (one request per image); each
connection sends them in turn, starting at its own.
Usage: python benchmarks/loadgen.py PORT REQUESTS_FILE CONCURRENCY REQUESTS
"""

import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_images import read_requests


async def one_connection(
    port: int,
    requests: list[bytes],
    first: int,
    count: int,
    latencies: list[float],
    statuses: dict[int, int],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for i in range(first, first + count):
            started = time.perf_counter()
            writer.write(requests[i % len(requests)])
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


async def run(port: int, requests: list[bytes], concurrency: int, total: int) -> dict[str, object]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    per_connection = [total // concurrency + (i < total % concurrency) for i in range(concurrency)]
    started = time.perf_counter()
    await asyncio.gather(
        *(
            one_connection(port, requests, i, n, latencies, statuses)
            for i, n in enumerate(per_connection)
            if n
        )
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
    port, requests_file, concurrency, total = sys.argv[1:5]
    requests = read_requests(Path(requests_file))
    print(json.dumps(asyncio.run(run(int(port), requests, int(concurrency), int(total)))))
