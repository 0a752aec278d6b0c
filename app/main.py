"""The FastAPI application."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import torch
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app.api import (
    architectures,
    dashboard,
    dataset_images,
    datasets,
    docs,
    events,
    exports,
    health,
    job_comparison,
    job_errors,
    jobs,
    plots,
    predict,
    predict_rows,
    registry,
    torchserve,
    v2,
    weights,
    workers,
)
from app.api.fast_inference import install_fast_inference
from app.assets import ASSETS_PREFIX
from app.collector import freeze_long_lived, unfreeze
from app.errors import install_error_handlers
from app.jobs.event_hub import EventHub
from app.migrations import upgrade_to_head
from app.no_route import install_no_route_handler
from app.oip.errors import ProtocolError, render_protocol_error
from app.openapi import install_openapi, operation_id
from app.parent_death import stop_with_supervisor
from app.request_edge import RequestEdge
from app.request_gate import RequestGate
from app.serving.lookup import ServingJobs
from app.serving.model_cache import ModelCache
from app.serving.service import Predictions
from app.settings import get_settings
from app.storage.config import get_store, get_store_health
from app.sweep import sweep_periodically
from app.version import package_version
from app.weights.upgrade import move_old_weights

log = logging.getLogger("trainserve.api")

DESCRIPTION = """Train PyTorch image classifiers over REST and serve them.

Submit a job with `POST /jobs`, follow it live with `GET /jobs/{id}/events` (or read
`GET /jobs/{id}` and `GET /jobs/{id}/metrics`), then classify images with `POST /predict`.
Every error is JSON `{"detail": "..."}` (with `errors`, each field, when a request fails
validation; a path no route serves is 404 and a method the path does not take 405, naming the
methods it does); the Open Inference Protocol's routes under `/v2` answer `{"error": "..."}`.
With keys on, use **Authorize** with the admin or the predict key.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    if settings.migrate_on_start:
        upgrade_to_head()
    app.state.event_hub = EventHub(settings.events_poll_seconds)
    # Made on a thread: a bucket's client resolves its credentials, perhaps over HTTP (an
    # instance role), which the event loop must not wait for.
    store = await asyncio.to_thread(get_store)
    await asyncio.to_thread(get_store_health)
    await asyncio.to_thread(move_old_weights, settings.data_dir, store)
    sweeping = asyncio.create_task(sweep_periodically(settings, store))
    frozen = app.state.freeze_collector
    if frozen:
        # Made now rather than by the first request, so that the freeze takes it too: the
        # OpenAPI document, which the metrics' route templates read (listing the networks for
        # it imports torchvision: some 160,000 objects that every full collection would walk).
        app.openapi()
        freeze_long_lived()  # what start-up made lives as long as the process
    try:
        yield
    finally:
        sweeping.cancel()
        await app.state.event_hub.close()
        if frozen:
            unfreeze()


def inference_device(requested: str) -> torch.device:
    """The device predictions run on."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("TRAINSERVE_INFERENCE_DEVICE=cuda but no CUDA GPU is available")
    use_cuda = requested == "cuda" or (requested == "auto" and torch.cuda.is_available())
    return torch.device("cuda" if use_cuda else "cpu")


def create_app(*, freeze_collector: bool = False) -> FastAPI:
    """Build the application with its routers and error handlers; `freeze_collector`: freeze
    what start-up leaves for the garbage collector once the lifespan has started (app/collector.py),
    for a process that serves this one app."""
    app = FastAPI(
        title="trainserve",
        version=package_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served from the package's own files: app/api/docs.py
        redoc_url=None,
        generate_unique_id_function=operation_id,
    )
    # Before the jobs router, whose /jobs/{job_id} would take /jobs/compare.
    app.include_router(job_comparison.router)
    app.include_router(jobs.router)
    app.include_router(events.router)
    app.include_router(plots.router)
    app.include_router(job_errors.router)
    app.include_router(predict.router)
    app.include_router(predict_rows.router)
    app.include_router(torchserve.router)
    app.include_router(workers.router)
    app.include_router(architectures.router)
    app.include_router(datasets.router)
    app.include_router(dataset_images.router)
    app.include_router(weights.router)
    app.include_router(registry.router)
    app.include_router(exports.router)
    app.include_router(v2.router)
    app.include_router(health.router)
    app.include_router(dashboard.router)
    app.include_router(docs.router)
    app.mount(ASSETS_PREFIX, dashboard.assets(), name="dashboard-assets")
    install_fast_inference(app)
    app.state.freeze_collector = freeze_collector
    install_error_handlers(app)
    install_no_route_handler(app)
    install_openapi(app)
    app.add_exception_handler(ProtocolError, render_protocol_error)
    settings = get_settings()
    torch.set_num_threads(settings.inference_threads)
    app.state.model_cache = ModelCache(
        settings.model_cache_size,
        device=inference_device(settings.inference_device),
        max_batch=settings.max_batch_size,
        max_wait_s=settings.max_batch_wait_ms / 1000,
    )
    # One service for every request: the prediction routes' dependency hands it out as it is.
    app.state.predictions = Predictions(ServingJobs(settings.default_model), app.state.model_cache)
    # Added innermost first: requests pass the request id, CORS, then the metrics, keys and
    # body limits in one layer.
    app.add_middleware(RequestGate, settings=settings, routes_from=app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )
    # Outermost, outside every layer that may answer unread bodies: every answer carries its
    # id (a CORS preflight's too, and so do its log lines), and closes a connection whose
    # request's body was not all read.
    app.add_middleware(RequestEdge)
    return app


def server_app() -> FastAPI:
    """The app as each server process of `trainserve api` and `up` serves it (uvicorn calls
    this factory in the process): the process stops when its supervisor dies, and serves this
    app for its whole life, so the collector is frozen once the app has started. Apps made for
    tests, many to a process, are not frozen."""
    stop_with_supervisor()
    return create_app(freeze_collector=True)


app = create_app()  # for `uvicorn app.main:app`
