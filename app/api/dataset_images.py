"""A dataset's images one by one, as PNG: uploaded image datasets and the built-in CIFAR-10."""

import hashlib
from typing import Annotated

from fastapi import APIRouter, Header, Path, Response

from app.api.deps import SessionDep, SettingsDep, StoreDep
from app.datasets.images import Split, dataset_image
from app.errors import ErrorOut
from app.jobs.fields import COUNT_MAX, DATASET_NAME
from app.ml.images import png_bytes

router = APIRouter(prefix="/datasets", tags=["datasets"])

# A dataset's images never change under its id (CIFAR-10's only if its files are replaced):
# browsers may keep them a day, then ask again with the ETag.
CACHE_CONTROL = "private, max-age=86400"
DatasetName = Annotated[
    str,
    Path(
        pattern=DATASET_NAME.pattern,
        max_length=32,
        description='"cifar10", or the id of an uploaded image dataset.',
    ),
]


@router.get(
    "/{dataset_id}/images/{split}/{index}.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "The image as stored (PNG)."},
        304: {"description": "The image is the one the client has (If-None-Match)."},
        404: {
            "model": ErrorOut,
            "description": "No such dataset, no image at this index, a table (rows, not "
            "images), or CIFAR-10 not on the server's disk.",
        },
        409: {
            "model": ErrorOut,
            "description": "The dataset is not ready, or CIFAR-10's files cannot be read.",
        },
        422: {"model": ErrorOut, "description": "Not a dataset name, a split or an index."},
        503: {
            "model": ErrorOut,
            "description": "The artifact store does not answer, or holds damaged tensors.",
        },
    },
    summary="One image of a dataset's train or test split (PNG)",
)
def get_dataset_image(
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    dataset_id: DatasetName,
    split: Split,
    index: Annotated[int, Path(ge=0, le=COUNT_MAX, description="From 0, in the split's order.")],
    if_none_match: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    """The image exactly as training reads it (an upload's images at the dataset's image_size),
    at its position in the split: the index `GET /jobs/{id}/errors` gives for a test image."""
    image = dataset_image(session, store, settings.data_dir, dataset_id, split, index)
    data = png_bytes(image)
    etag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if if_none_match is not None and etag in (tag.strip() for tag in if_none_match.split(",")):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type="image/png", headers=headers)
