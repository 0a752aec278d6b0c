"""The settings of the artifact store (app/storage): where artifacts live, how a bucket is
reached, and how long an outage of it is waited out. A mistyped location is refused at start,
naming the setting, rather than taken for a local folder."""

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.settings_sources import ENV_PREFIX
from app.storage.locations import CREDENTIALS_ELSEWHERE, has_credentials, parse_bucket_url

# How long a data-parallel job's other processes wait for the first at a collective
# (workers/training/data_parallel.py): the first, waiting out the store meanwhile, must give up
# on it well before they give up on it, so that the job fails naming the store.
COLLECTIVE_TIMEOUT_S = 600
STORE_OUTAGE_LIMIT_MAX_S = COLLECTIVE_TIMEOUT_S - 60
# Anything that starts like a URL (s3:/bucket, S3://bucket, gs://...) is not a folder's name.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


class StorageSettings(BaseSettings):
    """The artifact store's part of Settings."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    artifacts_dir: Path = Field(
        default=Path("./var/artifacts"),
        description="Where trained models, checkpoints and exports are written; with a bucket "
        "(TRAINSERVE_ARTIFACTS_URL), this process's cache of it.",
    )
    artifacts_url: str | None = Field(
        default=None,
        description="Where trained models, checkpoints and exports are kept: a local folder "
        "(default: TRAINSERVE_ARTIFACTS_DIR) or an S3-compatible bucket, s3://BUCKET/PREFIX, "
        "which machines that share nothing else can share.",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="The S3 API of a bucket outside AWS (MinIO, SeaweedFS, Ceph...); default: "
        "AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, else AWS S3 itself.",
    )
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field(
        default="auto",
        description="How the bucket is named in requests: path (MinIO, SeaweedFS) puts it in "
        "the path, virtual in the host name.",
    )
    s3_multipart_threshold_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=5 * 1024 * 1024,  # S3's smallest part
        description="Files larger than this go to the bucket as a multipart upload, in parts of "
        "this size.",
    )
    artifacts_cache_bytes: int = Field(
        default=8 * 1024**3,
        ge=0,
        description="Largest size of this process's cache of the bucket (files in use are "
        "kept beyond it); the least recently used files go first.",
    )
    store_outage_limit_seconds: float = Field(
        default=300.0,
        gt=0,
        le=STORE_OUTAGE_LIMIT_MAX_S,
        description="How long a running job waits, paused, for an artifact store that does not "
        "answer (a bucket's server stopped, the network gone) before it fails, naming the store; "
        "a worker claims nothing while the store does not answer. At most "
        f"{STORE_OUTAGE_LIMIT_MAX_S:.0f}: a data-parallel job's other processes wait for the "
        f"first at most {COLLECTIVE_TIMEOUT_S:.0f} s, and it must give up first.",
    )

    @model_validator(mode="after")
    def _artifacts_location(self) -> "StorageSettings":
        """A local folder given as the URL is the artifacts folder; a bucket is s3://."""
        url = self.artifacts_url
        if not url:
            self.artifacts_url = None
        elif url.startswith("s3://"):
            try:
                parse_bucket_url(url)
            except ValueError as exc:
                raise ValueError(f"TRAINSERVE_ARTIFACTS_URL {exc}") from None
        elif _SCHEME.match(url) and not url.startswith("file://"):
            raise ValueError(
                f"TRAINSERVE_ARTIFACTS_URL ({url}) must be a local folder or s3://BUCKET/PREFIX"
            )
        else:
            self.artifacts_dir, self.artifacts_url = Path(url.removeprefix("file://")), None
        return self

    @model_validator(mode="after")
    def _endpoint_has_a_scheme(self) -> "StorageSettings":
        endpoint = self.s3_endpoint_url
        if not endpoint:
            self.s3_endpoint_url = None
            return self
        if has_credentials(endpoint):  # not repeated: the message goes to logs and terminals
            raise ValueError(
                "TRAINSERVE_S3_ENDPOINT_URL must not hold credentials (http://USER:SECRET@...): "
                f"{CREDENTIALS_ELSEWHERE}"
            )
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"TRAINSERVE_S3_ENDPOINT_URL ({endpoint}) must be http://HOST[:PORT] or "
                "https://HOST[:PORT]"
            )
        return self
