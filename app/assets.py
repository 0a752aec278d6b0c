"""The files the browser pages load (the dashboard's and /docs'), and where they are served."""

from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "dashboard"
ASSETS_PREFIX = "/ui"
SWAGGER_UI = f"{ASSETS_PREFIX}/vendor/swagger-ui-5.35.0"
