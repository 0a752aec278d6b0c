"""The garbage collector's freeze: taken by the server's app while it runs, never by a test's,
and an app is freed once its lifespan has ended either way."""

import gc
import os
import subprocess
import sys
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


FIRST_REQUESTS = """
import gc
from fastapi.testclient import TestClient
from app.main import server_app
with TestClient(server_app()) as client:
    for path in ("/healthz", "/jobs", "/architectures"):
        assert client.get(path).status_code == 200, path
    gc.collect()
    print(len(gc.get_objects()))
"""


def test_the_first_requests_leave_little_outside_the_freeze(migrated_env: Env) -> None:
    # In a fresh interpreter: in this one, other tests have imported what the first requests
    # would, before this app froze it.
    answer = subprocess.run(
        [sys.executable, "-c", FIRST_REQUESTS], capture_output=True, text=True, env=os.environ
    )
    assert answer.returncode == 0, answer.stderr
    # About 6,000 here; the OpenAPI document built by the first request instead left some
    # 166,000 (torchvision's import among them) outside the freeze, for every full collection
    # to walk.
    assert int(answer.stdout) < 30_000
