"""The garbage collector's freeze: taken by the server's app while it runs, never by a test's,
and an app is freed once its lifespan has ended either way."""

import gc
import weakref

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.main import create_app, server_app
from tests.conftest import Env


def frozen_while_running(app: FastAPI) -> tuple[int, weakref.ref[FastAPI]]:
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        frozen = gc.get_freeze_count()
    return frozen, weakref.ref(app)


def test_an_app_for_tests_freezes_nothing_and_is_freed_after_its_lifespan(
    migrated_env: Env,
) -> None:
    frozen, app = frozen_while_running(create_app())
    assert frozen == 0
    gc.collect()
    assert app() is None


def test_the_server_app_freezes_while_it_runs_and_is_freed_after(migrated_env: Env) -> None:
    frozen, app = frozen_while_running(server_app())
    assert frozen > 10_000  # the imports' objects, at least
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert app() is None
