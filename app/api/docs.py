"""GET /docs: Swagger UI from files the package carries (it works offline), with an Authorize
button for the bearer key."""

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from app.assets import SWAGGER_UI

router = APIRouter(include_in_schema=False)


@router.get("/docs")
def docs() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="trainserve API",
        swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
        swagger_favicon_url="data:,",  # no request to anywhere else
        swagger_ui_parameters={"persistAuthorization": True, "displayOperationId": True},
    )
