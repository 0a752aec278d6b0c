"""A registered version's exports: safetensors, TorchScript, ONNX, and its model card."""

import hashlib
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from app.api.deps import SessionDep, StoreDep
from app.errors import ErrorOut
from app.exports.formats import ExportFormat
from app.exports.service import export
from app.registry.names import VERSION_MAX, Name
from app.registry.versions import find_model, find_version
from app.registry.views import version_view

router = APIRouter(prefix="/models", tags=["models"])

SHA256_HEADER = "X-Content-SHA256"


@router.get(
    "/{name}/versions/{version}/export",
    response_class=Response,
    responses={
        200: {
            "content": {"application/octet-stream": {}, "text/markdown": {}},
            "description": f"The file; its sha256 in the {SHA256_HEADER} header.",
        },
        404: {"model": ErrorOut, "description": "No such model or version."},
        503: {
            "model": ErrorOut,
            "description": "The model file is missing or damaged, or the artifact store does "
            "not answer.",
        },
    },
    summary="Download a version as safetensors, TorchScript, ONNX or a model card",
)
def export_version(
    session: SessionDep,
    store: StoreDep,
    name: Annotated[Name, Path(description="The registered model's name.")],
    version: Annotated[int, Path(ge=1, le=VERSION_MAX)],
    export_format: Annotated[
        ExportFormat,
        Query(
            alias="format",
            description="safetensors: the weights with the architecture, classes, input size "
            "and normalisation in the header; torchscript and onnx: a module that takes a uint8 "
            "batch (N, H, W, 3), or a table's raw features (N, F), and gives probabilities; "
            "card: a Markdown model card.",
        ),
    ],
) -> Response:
    model = find_model(session, name)
    found = find_version(session, model, version)
    view, model_path = version_view(session, model, found), found.model_path
    made = export(view, model_path, store, export_format)
    return Response(
        made.data,
        media_type=made.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{made.filename}"',
            SHA256_HEADER: hashlib.sha256(made.data).hexdigest(),
        },
    )
