"""Settings read from the environment (prefix TRAINSERVE_)."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

OFFICIAL_CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


class Settings(BaseSettings):
    """Everything the API and the worker can be told from outside."""

    model_config = SettingsConfigDict(env_prefix="TRAINSERVE_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./var/trainserve.db",
        description="SQLAlchemy URL of the job database.",
    )
    data_dir: Path = Field(default=Path("./var/data"), description="Where datasets live.")
    artifacts_dir: Path = Field(
        default=Path("./var/artifacts"), description="Where trained models are written."
    )
    download: bool = Field(
        default=True, description="Download CIFAR-10 when its files are missing."
    )
    cifar10_url: str = Field(
        default=OFFICIAL_CIFAR10_URL,
        description="Where CIFAR-10 is downloaded from (a mirror for offline sites).",
    )
    worker_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often an idle worker looks for a queued job."
    )
    sqlite_busy_timeout_ms: int = Field(
        default=30_000, ge=0, description="How long SQLite waits for a lock before failing."
    )
    migrate_on_start: bool = Field(
        default=True, description="Apply database migrations when the API starts."
    )
    log_level: str = Field(default="INFO", description="Log level of the API and the worker.")
    model_cache_size: int = Field(
        default=4, ge=1, description="Trained models kept in memory by the API."
    )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
