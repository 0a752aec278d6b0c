"""Shared fixtures: real databases (SQLite files, or PostgreSQL with --database=postgresql)
migrated by Alembic, real CIFAR-10 layouts on disk."""

import pickle
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from app.db import get_engine, get_session_factory
from app.jobs.config import JobConfig
from app.migrations import upgrade_to_head
from app.settings import Settings, get_settings
from app.storage.config import get_store, get_store_health
from tests.databases import backend, fresh_database, postgres_server_url
from tests.s3 import s3_bucket, s3_server  # noqa: F401  (the fixtures, for every bucket test)

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
CIFAR_JPEG_ARCHIVE = SHARED_DATA / "cifar10-jpeg.tar.gz"
REBUILD_TOOL = REPO_ROOT.parent / "shared" / "tools" / "jpeg_to_cifar_batches.py"
TUTORIAL_TOOL = REPO_ROOT.parent / "shared" / "tools" / "seed_tutorial.py"
CIFAR_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def _clear_caches() -> None:
    get_settings.cache_clear()
    get_engine.cache_clear()
    get_session_factory.cache_clear()
    get_store.cache_clear()
    get_store_health.cache_clear()


@dataclass(frozen=True)
class Env:
    """A configured trainserve installation inside a temporary folder."""

    root: Path
    database_url: str
    data_dir: Path
    artifacts_dir: Path

    def variables(self) -> dict[str, str]:
        return {
            "TRAINSERVE_DATABASE_URL": self.database_url,
            "TRAINSERVE_DATA_DIR": str(self.data_dir),
            "TRAINSERVE_ARTIFACTS_DIR": str(self.artifacts_dir),
            "TRAINSERVE_DOWNLOAD": "0",
            "TRAINSERVE_WORKER_POLL_SECONDS": "0.2",
            "TRAINSERVE_HEARTBEAT_SECONDS": "0.5",
            "TRAINSERVE_LEASE_SECONDS": "5",
        }

    def settings(self) -> Settings:
        return get_settings()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="the database every test runs against (postgresql: see tests/databases.py)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if backend(config) == "postgresql":
        postgres_server_url()  # a clear usage error at once, not one per test


def pytest_report_header(config: pytest.Config) -> str:
    return f"database: {backend(config)}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    chosen = backend(config)
    for item in items:
        only = item.get_closest_marker("database")
        if only and chosen not in only.args:
            item.add_marker(pytest.mark.skip(reason=f"checks {'/'.join(only.args)} only"))
        elif only is None and "env" not in getattr(item, "fixturenames", ()) and chosen != "sqlite":
            # Every database a test opens comes from `env`: one without it (the training
            # math, the networks, the decoders) checks the same thing under either --database,
            # so it runs in the SQLite pass only.
            item.add_marker(pytest.mark.skip(reason="uses no database: the SQLite pass runs it"))


@pytest.fixture
def env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pytestconfig: pytest.Config
) -> Iterator[Env]:
    """Settings pointing at a fresh database and folders, schema not yet created."""
    with fresh_database(pytestconfig, tmp_path) as database_url:
        installation = Env(
            root=tmp_path,
            database_url=database_url,
            data_dir=tmp_path / "data",
            artifacts_dir=tmp_path / "artifacts",
        )
        for name, value in installation.variables().items():
            monkeypatch.setenv(name, value)
        _clear_caches()
        yield installation
        get_engine().dispose()
        _clear_caches()


@pytest.fixture
def migrated_env(env: Env) -> Env:
    """The same, with the schema made by the Alembic migrations."""
    upgrade_to_head()
    return env


def write_cifar_layout(
    root: Path,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    classes: list[str] = CIFAR_CLASSES,
) -> Path:
    """Write images (N, 3, 32, 32) uint8 and labels in the official cifar-10-batches-py format."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def dump(name: str, images: np.ndarray, labels: np.ndarray) -> None:
        with (folder / name).open("wb") as f:
            pickle.dump(
                {
                    "batch_label": name,
                    "labels": [int(x) for x in labels],
                    "data": images.reshape(len(images), -1),
                    "filenames": [],
                },
                f,
                protocol=4,
            )

    train_images, train_labels = train
    per_batch = (len(train_images) + 4) // 5
    for i in range(5):
        part = slice(i * per_batch, (i + 1) * per_batch)
        dump(f"data_batch_{i + 1}", train_images[part], train_labels[part])
    dump("test_batch", *test)
    with (folder / "batches.meta").open("wb") as f:
        pickle.dump({"label_names": classes, "num_cases_per_batch": per_batch}, f, protocol=4)
    return folder


@contextmanager
def small_disk(mount_point: Path, size: str) -> Iterator[Path]:
    """A real filesystem of `size` (a tmpfs) at `mount_point`, to fill up; skips the test where
    one cannot be mounted (mounting needs root)."""
    mount_point.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        # Lazily: a process that still has a file open there must not fail the test.
        subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


def synthetic_split(count: int, seed: int, num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Images whose class is visible in their mean colour, so a CNN can learn them quickly."""
    palette = np.random.default_rng(0).integers(0, 256, size=(num_classes, 3, 1, 1))
    labels = np.arange(count) % num_classes
    noise = np.random.default_rng(seed).integers(-40, 41, size=(count, 3, 32, 32))
    images = np.clip(palette[labels] + noise, 0, 255).astype(np.uint8)
    return images, labels


@pytest.fixture
def synthetic_cifar(env: Env) -> Path:
    """A small CIFAR-10-format dataset under the env's DATA_DIR (400 train, 100 test)."""
    return write_cifar_layout(
        env.data_dir, synthetic_split(400, seed=1), synthetic_split(100, seed=2)
    )


def _require_shared_data() -> None:
    if not CIFAR_JPEG_ARCHIVE.is_file() or not REBUILD_TOOL.is_file():
        pytest.skip(f"real CIFAR-10 not available: {CIFAR_JPEG_ARCHIVE} or {REBUILD_TOOL} missing")


def _rebuild(out_root: Path, *limits: str) -> Path:
    subprocess.run(
        [sys.executable, str(REBUILD_TOOL), str(CIFAR_JPEG_ARCHIVE), str(out_root), *limits],
        check=True,
        capture_output=True,
    )
    return out_root


@pytest.fixture(scope="session")
def real_cifar_subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DATA_DIR holding real CIFAR-10 (2,000 train / 500 test, class-balanced)."""
    _require_shared_data()
    return _rebuild(tmp_path_factory.mktemp("cifar-subset"), "--train", "2000", "--test", "500")


@pytest.fixture(scope="session")
def real_cifar_10k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DATA_DIR holding real CIFAR-10 (10,000 train / 2,000 test, class-balanced)."""
    _require_shared_data()
    return _rebuild(tmp_path_factory.mktemp("cifar-10k"), "--train", "10000", "--test", "2000")


@pytest.fixture(scope="session")
def real_cifar_full(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DATA_DIR holding all of the real CIFAR-10 (50,000 train / 10,000 test)."""
    _require_shared_data()
    return _rebuild(tmp_path_factory.mktemp("cifar-full"))


def job_config(**fields: object) -> JobConfig:
    """A job's resolved config: the defaults (the tutorial's), seed 0, and these fields."""
    return JobConfig.model_validate({"seed": 0, **fields})
