"""The FastAPI application."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api import health, jobs, predict
from app.errors import install_error_handlers
from app.migrations import upgrade_to_head
from app.model_cache import ModelCache
from app.settings import get_settings
from app.validation import install_validation_handler

log = logging.getLogger("trainserve.api")

DESCRIPTION = """Train PyTorch image classifiers over REST and serve them.

Submit a job with `POST /jobs`, follow it with `GET /jobs/{id}` and `GET /jobs/{id}/metrics`,
then classify images with `POST /predict`. Every error is JSON `{"detail": "..."}`.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    if settings.migrate_on_start:
        upgrade_to_head()
    app.state.model_cache = ModelCache(settings.model_cache_size)
    yield


def create_app() -> FastAPI:
    """Build the application with its routers and error handlers."""
    app = FastAPI(title="trainserve", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.include_router(jobs.router)
    app.include_router(predict.router)
    app.include_router(health.router)
    install_error_handlers(app)
    install_validation_handler(app)
    return app


app = create_app()
