"""Settings read from the environment (prefix TRAINSERVE_), the secret ones also from files
(TRAINSERVE_ADMIN_KEY_FILE...), as container platforms hand secrets over."""

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from app.logs import LogFormat
from app.settings_sources import ENV_PREFIX, SecretFiles, SettingsError, describe
from app.settings_storage import StorageSettings

OFFICIAL_CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


class Settings(StorageSettings):
    """Everything the API and the worker can be told from outside."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        files = SecretFiles(settings_cls)
        return init_settings, files, env_settings, dotenv_settings, file_secret_settings

    database_url: str = Field(
        default="sqlite:///./var/trainserve.db",
        description="SQLAlchemy URL of the job database.",
    )
    data_dir: Path = Field(
        default=Path("./var/data"),
        description="CIFAR-10, and datasets uploaded before the artifact store.",
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
    lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long a running job's lease lasts without a heartbeat before the job "
        "goes back to the queue.",
    )
    heartbeat_seconds: float = Field(
        default=5.0, gt=0, description="How often a worker renews the lease of its job."
    )
    max_attempts: int = Field(
        default=3,
        ge=1,
        description="Lease expiries after which a job fails (per job), and deaths of its "
        "decoding process or worker after which an uploaded dataset fails (per dataset).",
    )
    checkpoint_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Longest time between checkpoints inside an epoch (one is also written at "
        "the end of every epoch).",
    )
    failpoint_checkpoint_pause_seconds: float = Field(
        default=0.0,
        ge=0,
        description="Fault injection for tests: pause this long inside every checkpoint write.",
    )
    database_outage_seconds: float = Field(
        default=600.0,
        gt=0,
        description="How long a running job waits, paused, for a database that is out of space "
        "or out of reach before its worker leaves it to its lease (it is queued again and "
        "resumes from its checkpoint once the database is back).",
    )
    sweep_interval_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="How often the API removes files no row refers to (also once at its start).",
    )
    sweep_grace_seconds: float = Field(
        default=3600.0,
        ge=0,
        description="The sweep leaves alone files changed more recently than this: an upload "
        "still being received and checked, a folder whose row is being committed, a file "
        "published whose row is not yet written.",
    )
    failpoint_decode_pause_seconds: float = Field(
        default=0.0,
        ge=0,
        description="Fault injection for tests: the process decoding a dataset pauses this long "
        "before it starts.",
    )
    failpoint_upload_pause_seconds: float = Field(
        default=0.0,
        ge=0,
        description="Fault injection for tests: pause this long once an upload is stored, "
        "before it is checked and recorded.",
    )
    sqlite_busy_timeout_ms: int = Field(
        default=30_000, ge=0, description="How long SQLite waits for a lock before failing."
    )
    migrate_on_start: bool = Field(
        default=True, description="Apply database migrations when the API starts."
    )
    inference_device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="Where the API runs predictions (auto: CUDA when present)."
    )
    max_batch_size: int = Field(
        default=64, ge=1, le=4096, description="Most images in one batched forward pass."
    )
    max_batch_wait_ms: float = Field(
        default=0.0,
        ge=0,
        le=1000,
        description="Longest a prediction waits for others to share its forward pass (batches "
        "also form, with no wait, from requests that arrive during a forward pass).",
    )
    inference_threads: int = Field(
        default=1,
        ge=1,
        le=256,
        description="torch threads for predictions on the CPU (the event loop needs a core too).",
    )
    max_batch_files: int = Field(
        default=64, ge=1, le=4096, description="Most images in one POST /predict/batch."
    )
    max_batch_predict_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="Largest /predict/batch request body, in bytes.",
    )
    max_dataset_bytes: int = Field(
        default=1024**3,
        ge=1024,
        description="Largest dataset upload (POST /datasets request body), in bytes.",
    )
    max_weights_bytes: int = Field(
        default=2 * 1024**3,
        ge=1024,
        description="Largest weights file upload (POST /weights request body), in bytes.",
    )
    max_predict_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=1024,
        description="Largest /predict request body, in bytes: a camera photo fits.",
    )
    admin_key: SecretStr | None = Field(
        default=None, description="API key for everything (Authorization: Bearer <key>)."
    )
    predict_key: SecretStr | None = Field(
        default=None, description="API key for prediction and reading only."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser (comma-separated); none: "
        "CORS off.",
    )
    events_poll_seconds: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="How often an API process looks for new events of each job followed on "
        "GET /jobs/{id}/events (one read a job, whatever the number of streams).",
    )
    events_max_seconds: float = Field(
        default=900.0,
        gt=0,
        description="Longest one event stream stays open; the client then resumes with "
        "Last-Event-ID (browsers and `trainserve submit --follow` do so by themselves).",
    )
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="Longest a client may take to send a request's line and headers; the "
        "connection is then closed (`trainserve api` and `up` only).",
    )
    body_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Longest a request's body may pause between two chunks before the request "
        "is answered 408.",
    )
    max_connections: int = Field(
        default=2048,
        ge=1,
        description="Most open connections (and requests in progress) in one server process; "
        "beyond it new requests are answered 503 (`trainserve api` and `up` only).",
    )
    api_workers: int | Literal["auto"] = Field(
        default=1,
        description="Server processes of `trainserve api` and `up` (their --workers): a number "
        "from 1 to 512, or auto for one per usable core (the CPU affinity, capped by the "
        "cgroup's CPU quota).",
    )
    shutdown_grace_seconds: int = Field(
        default=10,
        ge=0,
        description="How long a stopping API waits for open requests and event streams.",
    )
    log_level: str = Field(default="INFO", description="Log level of the API and the worker.")
    log_format: LogFormat = Field(
        default="text",
        description="How log lines are written: text, or one JSON object a line (json).",
    )
    model_cache_size: int = Field(
        default=4, ge=1, description="Trained models kept in memory by the API."
    )
    default_model: str = Field(
        default="cifar10",
        pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$",
        description="The registered model whose production version answers /predict when a "
        "request names neither a model nor a job.",
    )

    @field_validator("api_workers", mode="before")
    @classmethod
    def _processes(cls, value: object) -> object:
        return server_processes_setting(value)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("admin_key", "predict_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def auth_enabled(self) -> bool:
        return self.admin_key is not None or self.predict_key is not None

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> "Settings":
        if self.heartbeat_seconds >= self.lease_seconds:
            raise ValueError(
                f"TRAINSERVE_HEARTBEAT_SECONDS ({self.heartbeat_seconds}) must be shorter than "
                f"TRAINSERVE_LEASE_SECONDS ({self.lease_seconds})"
            )
        return self


API_WORKERS_MAX = 512
_PROCESS_COUNT = re.compile(r"[0-9]{1,4}")  # ASCII digits: str.isdigit() also takes "²"


def server_processes_setting(value: object) -> int | Literal["auto"]:
    """A number of server processes (1 to API_WORKERS_MAX) or "auto", from a setting or an
    option; a ValueError that says what to give otherwise."""
    if value == "auto":
        return "auto"
    count: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        count = value
    elif isinstance(value, str) and _PROCESS_COUNT.fullmatch(value):
        count = int(value)
    if count is None or not 1 <= count <= API_WORKERS_MAX:
        raise ValueError(
            f"{value!r}: give a number of server processes from 1 to {API_WORKERS_MAX}, or auto"
        )
    return count


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once; a SettingsError says which one is wrong."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(describe(exc)) from None
