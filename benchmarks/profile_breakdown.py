"""Where a server process's time goes, from a py-spy profile in its raw (collapsed) format.

Each sample of the event-loop thread is given to the innermost frame that belongs to a known
part (multipart parsing, JSON, the service's middlewares, FastAPI's routing and dependencies,
...); the other threads are summed apart (the inference thread, the thread pool).
Usage: python benchmarks/profile_breakdown.py PROFILE.txt (py-spy record -f raw -o PROFILE.txt)
"""

import sys
from collections import Counter
from pathlib import Path

# The first part whose pattern a frame's file contains; checked from the innermost frame out.
PARTS = [
    ("multipart parsing", ("multipart/", "starlette/formparsers.py", "datastructures.py")),
    ("JSON", ("json/",)),
    (
        "the service's middlewares and metrics",
        (
            "app/middleware.py",
            "app/request_gate.py",
            "app/lingering_close.py",
            "app/slow_clients.py",
            "app/metrics.py",
            "prometheus_client/",
        ),
    ),
    ("the routes and the prediction service", ("app/api/", "app/serving/", "app/oip/")),
    (
        "routing and dependency solving",
        (
            "fastapi/routing.py",
            "fastapi/dependencies/",
            "fastapi/_compat",
            "starlette/routing.py",
            "pydantic",
            "starlette/requests.py",
            "typing.py",
        ),
    ),
    (
        "framework middleware",
        (
            "starlette/middleware/",
            "fastapi/middleware/",
            "fastapi/telemetry/",
            "_body_limit.py",
            "starlette/_exception_handler.py",
            "uvicorn/middleware/",
            "opentelemetry/",
            "contextlib.py",
        ),
    ),
    ("HTTP and the event loop", ("uvicorn/", "asyncio/", "uvloop", "httptools")),
]
THREAD_ROOT = "Thread._bootstrap"  # where every thread but the main one starts


def part_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, patterns in PARTS:
            if any(pattern in frame for pattern in patterns):
                return name
    return "other"


def main() -> None:
    loop, threads = Counter[str](), Counter[str]()
    for line in Path(sys.argv[1]).read_text().splitlines():
        stack, samples = line.rsplit(" ", 1)
        frames = stack.split(";")
        if not frames[0].startswith(THREAD_ROOT):  # the main thread, which runs the event loop
            loop[part_of(frames)] += int(samples)
        elif any("batcher.py" in frame for frame in frames):
            threads["inference thread (decode, forward pass)"] += int(samples)
        else:
            threads["other threads (thread pool)"] += int(samples)
    total = loop.total()
    print(f"event-loop thread, {total} samples:")
    for name, count in loop.most_common():
        print(f"  {100 * count / total:5.1f}%  {name}")
    print("other threads, as a share of the event-loop thread's samples:")
    for name, count in threads.most_common():
        print(f"  {100 * count / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
