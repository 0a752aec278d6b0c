"""Prometheus metrics: what the API measures itself, and what the database says of the jobs.

Workers expose no port: their figures (the images each has trained) reach the API through the
database, where every heartbeat stores them, and are read at each scrape along with the jobs by
status. With several API server processes, each writes its own samples to
PROMETHEUS_MULTIPROC_DIR (set by `trainserve api --workers N`) and a scrape adds them up.
"""

import os
import re
from collections.abc import Iterator

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy import func, select
from starlette.routing import Mount, Route, compile_path
from starlette.types import Scope

from app.db import session_scope
from app.models import Job, JobStatus, WorkerRecord

REQUESTS = Counter(
    "trainserve_http_requests", "HTTP requests answered", ["method", "route", "status"]
)
LATENCY = Histogram(
    "trainserve_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response",
    ["method", "route"],
)
PREDICTION_BATCH = Histogram(
    "trainserve_prediction_batch_size",
    "Images in one forward pass of the prediction batcher",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
)
PREDICTIONS = Counter(
    "trainserve_predictions",
    'Inputs classified, by the registered model and version that answered ("-" for a '
    "model named by job_id)",
    ["model", "version"],
)
# A process labels predictions with at most this many (model, version) pairs; later ones are
# counted as "other", so that a registry that keeps growing cannot grow the label set.
MAX_PREDICTION_LABELS = 64
OTHER = "other"
SEEN_PATHS_MAX = 4096
SEEN_PATH_MAX_CHARS = 256  # with SEEN_PATHS_MAX, at most about 1 MiB of paths kept
UNMATCHED = "unmatched"  # a path no route serves: one label, however many such paths come
# The client chooses the method: any other word is counted as "other", so labels stay few.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


_prediction_labels: set[tuple[str, str]] = set()


def count_predictions(model: str | None, version: int | None, inputs: int) -> None:
    """Count `inputs` classified by the model `model` at `version` (None: named by job_id)."""
    labels = (model or "-", "-" if version is None else str(version))
    if labels not in _prediction_labels:
        if len(_prediction_labels) >= MAX_PREDICTION_LABELS:
            labels = (OTHER, OTHER)
        else:
            _prediction_labels.add(labels)
    PREDICTIONS.labels(*labels).inc(inputs)


class RouteTemplates:
    """Finds the route template a path matches ("/jobs/{job_id}"), so that labels stay few."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._compiled: list[tuple[re.Pattern[str], str]] | None = None
        # Each path's template once matched: a prediction's path was matched against some 90
        # patterns per request. Only paths a route serves, none very long, and never more than
        # SEEN_PATHS_MAX: clients choose paths, and ids and names make them without end.
        self._seen: dict[str, str] = {}

    def of(self, path: str) -> str:
        template = self._seen.get(path)
        if template is None:
            template = self._match(path)
            if template != UNMATCHED and len(path) <= SEEN_PATH_MAX_CHARS:
                if len(self._seen) >= SEEN_PATHS_MAX:
                    self._seen.clear()  # the paths in use come back at their next request
                self._seen[path] = template
        return template

    def _match(self, path: str) -> str:
        if self._compiled is None:  # the routes are all in place by the first request
            templates = [*self.app.openapi()["paths"]]
            routes = self.app.routes
            templates += [r.path for r in routes if isinstance(r, Route)]
            templates += [f"{r.path}/{{path:path}}" for r in routes if isinstance(r, Mount)]
            self._compiled = [(compile_path(t)[0], t) for t in dict.fromkeys(templates)]
        for pattern, template in self._compiled:
            if pattern.match(path):
                return template
        return UNMATCHED


class RequestMetrics:
    """Counts and times every HTTP request by method, route template and status (recorded by
    app/request_gate.py, which sees every answer, the refusals of keys and limits too)."""

    def __init__(self, routes_from: FastAPI) -> None:
        self.routes = RouteTemplates(routes_from)

    def record(self, scope: Scope, status: int, seconds: float) -> None:
        route = self.routes.of(scope["path"])
        method = scope["method"] if scope["method"] in METHODS else "other"
        REQUESTS.labels(method, route, str(status)).inc()
        LATENCY.labels(method, route).observe(seconds)


class JobsCollector(Collector):
    """Jobs by status and the images each worker has trained, read from the database at scrape.

    The images are a counter per worker process (its record holds the running total), so that
    rate() gives the training speed: deleting a job leaves it as it is, and a worker that stops
    or restarts ends its series as any process's counter does.
    """

    def collect(self) -> Iterator[Metric]:
        with session_scope() as session:
            counts = dict(
                session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
            )
            trained = session.execute(
                select(WorkerRecord.id, WorkerRecord.images_trained).order_by(WorkerRecord.id)
            ).all()
        jobs = GaugeMetricFamily("trainserve_jobs", "Jobs by status", labels=["status"])
        for status in JobStatus:
            jobs.add_metric([status.value], counts.get(status.value, 0))
        yield jobs
        images = CounterMetricFamily(
            "trainserve_training_images",
            "Images each worker process has trained on, over all its jobs (an image trained "
            "again after a job resumes from an earlier checkpoint counts again)",
            labels=["worker"],
        )
        for worker, count in trained:
            images.add_metric([worker], count)
        yield images


def exposition() -> bytes:
    """Every metric in the Prometheus text format."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # the samples of every server process
    else:
        registry.register(_Process())
    registry.register(JobsCollector())
    return generate_latest(registry)


class _Process(Collector):
    """This process's own metrics (one server process)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()
