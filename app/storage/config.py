"""The artifact store the settings name, made once per process."""

from functools import lru_cache

from app.settings import Settings, get_settings
from app.storage.cache import FileCache
from app.storage.health import StoreHealth
from app.storage.local import LocalFolder
from app.storage.store import ArtifactStore

CACHE_FOLDER = "bucket-cache"


def open_store(settings: Settings) -> ArtifactStore:
    """The local folder TRAINSERVE_ARTIFACTS_DIR, or the bucket TRAINSERVE_ARTIFACTS_URL names
    with this process's cache of it under that folder."""
    if settings.artifacts_url is None:
        return LocalFolder(settings.artifacts_dir)
    from app.storage.bucket import Bucket  # boto3 is imported only where a bucket is used

    return Bucket(
        settings.artifacts_url,
        FileCache(settings.artifacts_dir / CACHE_FOLDER, settings.artifacts_cache_bytes),
        endpoint_url=settings.s3_endpoint_url,
        addressing_style=settings.s3_addressing_style,
        multipart_threshold_bytes=settings.s3_multipart_threshold_bytes,
    )


@lru_cache
def get_store() -> ArtifactStore:
    """The process-wide artifact store of get_settings()."""
    return open_store(get_settings())


@lru_cache
def get_store_health() -> StoreHealth:
    """Whether get_store() answers, asked of it at most every few seconds (/readyz)."""
    return StoreHealth(get_store())
