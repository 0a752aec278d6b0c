"""GET /: the dashboard, a page with no build step; its scripts and styles under /ui/."""

from functools import cache

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.api.deps import SettingsDep
from app.assets import ASSETS

router = APIRouter(include_in_schema=False)


@cache
def _page() -> str:
    return (ASSETS / "index.html").read_text()


@router.get("/")
def dashboard(settings: SettingsDep) -> HTMLResponse:
    """The page; it says whether the API wants a key, so that it asks before calling it, and
    which model /predict serves by default."""
    auth = "required" if settings.auth_enabled else "none"
    page = _page().replace("{{AUTH}}", auth).replace("{{DEFAULT_MODEL}}", settings.default_model)
    return HTMLResponse(page, headers={"Cache-Control": "no-cache"})


def assets() -> StaticFiles:
    """The page's scripts, styles and the vendored chart library."""
    return StaticFiles(directory=ASSETS)
