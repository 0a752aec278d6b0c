"""Settings: secrets read from files (TRAINSERVE_ADMIN_KEY_FILE...), and a bad setting ends a
process with one line naming it, not a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.cli.server import server_processes
from app.main import create_app
from app.settings import Settings, SettingsError, get_settings
from tests.conftest import Env

TRAINSERVE = str(Path(sys.executable).parent / "trainserve")  # the installed console script


def settings_error(**variables: str) -> SettingsError:
    """What reading the settings raises with these variables set; they are unset again after,
    so that the test's installation can still be torn down."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in variables.items():
            patch.setenv(name, value)
        get_settings.cache_clear()
        with pytest.raises(SettingsError) as caught:
            get_settings()
    get_settings.cache_clear()
    return caught.value


def secret_file(env: Env, name: str, content: bytes) -> Path:
    path = env.root / "secrets" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    return path


def test_keys_and_the_database_url_are_read_from_files(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = secret_file(env, "admin_key", b"admin-from-file\n")
    predict = secret_file(env, "predict_key", b"predict from file\r\n")  # a space is kept
    database = secret_file(env, "database_url", env.database_url.encode() + b"\n")
    monkeypatch.setenv("TRAINSERVE_ADMIN_KEY_FILE", str(admin))
    monkeypatch.setenv("TRAINSERVE_PREDICT_KEY_FILE", str(predict))
    # An empty variable counts as unset, as an image's default may need to be.
    monkeypatch.setenv("TRAINSERVE_DATABASE_URL", "")
    monkeypatch.setenv("TRAINSERVE_DATABASE_URL_FILE", str(database))
    get_settings.cache_clear()
    settings = get_settings()
    assert settings.admin_key is not None and settings.predict_key is not None
    assert settings.admin_key.get_secret_value() == "admin-from-file"
    assert settings.predict_key.get_secret_value() == "predict from file"
    assert settings.database_url == env.database_url
    # A real server with them: migrated through the URL from the file, keys from theirs.
    with TestClient(create_app()) as client:
        assert client.get("/readyz").status_code == 200
        assert client.get("/jobs").status_code == 401
        admin_key = {"Authorization": "Bearer admin-from-file"}
        assert client.get("/jobs", headers=admin_key).json() == {"items": [], "total": 0}
        predict_key = {"Authorization": "Bearer predict from file"}
        assert client.post("/jobs", headers=predict_key).status_code == 403


def test_an_empty_file_variable_counts_as_unset(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINSERVE_ADMIN_KEY", "from-the-variable")
    monkeypatch.setenv("TRAINSERVE_ADMIN_KEY_FILE", "")
    get_settings.cache_clear()
    admin_key = get_settings().admin_key
    assert admin_key is not None and admin_key.get_secret_value() == "from-the-variable"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "TRAINSERVE_ADMIN_KEY_FILE names {path}, which does not exist"),
        (b"", "TRAINSERVE_ADMIN_KEY_FILE names {path}, which is empty"),
        (b"\n", "TRAINSERVE_ADMIN_KEY_FILE names {path}, which is empty"),
        (b"\xff\xfe key", "TRAINSERVE_ADMIN_KEY_FILE names {path}, which is not UTF-8 text"),
    ],
)
def test_a_key_file_that_gives_no_key_is_named_with_its_path(
    env: Env, content: bytes | None, problem: str
) -> None:
    path = env.root / "secrets" / "admin_key"
    if content is not None:
        secret_file(env, "admin_key", content)
    error = settings_error(TRAINSERVE_ADMIN_KEY_FILE=str(path))
    assert error.problem == problem.format(path=path)
    assert str(error) == f"trainserve: cannot start: {problem.format(path=path)}"


def test_a_directory_is_not_a_key_file(env: Env) -> None:
    error = settings_error(TRAINSERVE_PREDICT_KEY_FILE=str(env.root))
    assert error.problem == f"TRAINSERVE_PREDICT_KEY_FILE names {env.root}, a directory, not a file"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_key_file_is_named(env: Env) -> None:
    path = secret_file(env, "admin_key", b"k\n")
    path.chmod(0)
    error = settings_error(TRAINSERVE_ADMIN_KEY_FILE=str(path))
    assert (
        error.problem == f"TRAINSERVE_ADMIN_KEY_FILE names {path}, which this process may not read"
    )


def test_a_setting_given_both_ways_is_refused(env: Env) -> None:
    path = secret_file(env, "database_url", env.database_url.encode())
    # Beside the installation's own TRAINSERVE_DATABASE_URL.
    error = settings_error(TRAINSERVE_DATABASE_URL_FILE=str(path))
    assert error.problem == (
        "TRAINSERVE_DATABASE_URL and TRAINSERVE_DATABASE_URL_FILE are both set: set one of "
        "them, and leave the other unset or empty"
    )


def test_bad_values_name_their_variables(env: Env) -> None:
    error = settings_error(TRAINSERVE_MAX_ATTEMPTS="0", TRAINSERVE_INFERENCE_DEVICE="gpu")
    assert error.problem == (
        "TRAINSERVE_MAX_ATTEMPTS: Input should be greater than or equal to 1; "
        "TRAINSERVE_INFERENCE_DEVICE: Input should be 'auto', 'cpu' or 'cuda'"
    )
    error = settings_error(TRAINSERVE_HEARTBEAT_SECONDS="10")
    assert error.problem == (
        "TRAINSERVE_HEARTBEAT_SECONDS (10.0) must be shorter than TRAINSERVE_LEASE_SECONDS (5.0)"
    )


def test_the_artifacts_url_is_a_local_folder_or_a_bucket(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    for given in (str(env.root / "elsewhere"), f"file://{env.root}/elsewhere"):
        monkeypatch.setenv("TRAINSERVE_ARTIFACTS_URL", given)
        get_settings.cache_clear()
        settings = get_settings()
        assert (settings.artifacts_dir, settings.artifacts_url) == (env.root / "elsewhere", None)
    monkeypatch.setenv("TRAINSERVE_ARTIFACTS_URL", "s3://models/team-a")
    get_settings.cache_clear()
    settings = get_settings()
    assert (settings.artifacts_dir, settings.artifacts_url) == (
        env.artifacts_dir,  # this process's cache of the bucket
        "s3://models/team-a",
    )
    monkeypatch.delenv("TRAINSERVE_ARTIFACTS_URL")
    assert settings_error(TRAINSERVE_ARTIFACTS_URL="gs://models/a").problem == (
        "TRAINSERVE_ARTIFACTS_URL (gs://models/a) must be a local folder or s3://BUCKET/PREFIX"
    )
    assert settings_error(TRAINSERVE_ARTIFACTS_URL="s3:///a").problem == (
        "TRAINSERVE_ARTIFACTS_URL (s3:///a) names no bucket: s3://BUCKET/PREFIX"
    )
    # Past it, a data-parallel job's other processes would give up on the first before it fails.
    assert settings_error(TRAINSERVE_STORE_OUTAGE_LIMIT_SECONDS="600").problem == (
        "TRAINSERVE_STORE_OUTAGE_LIMIT_SECONDS: Input should be less than or equal to 540"
    )
    assert settings_error(TRAINSERVE_S3_MULTIPART_THRESHOLD_BYTES="1000").problem == (
        "TRAINSERVE_S3_MULTIPART_THRESHOLD_BYTES: Input should be greater than or equal to 5242880"
    )
    # A mistyped bucket is not taken for a folder named "s3:".
    for typo in ("s3:/models/a", "s3:models", "S3://models/a"):
        assert settings_error(TRAINSERVE_ARTIFACTS_URL=typo).problem == (
            f"TRAINSERVE_ARTIFACTS_URL ({typo}) must be a local folder or s3://BUCKET/PREFIX"
        )
    for endpoint in ("minio:9000", "127.0.0.1:9000", "ftp://minio:9000"):
        assert settings_error(TRAINSERVE_S3_ENDPOINT_URL=endpoint).problem == (
            f"TRAINSERVE_S3_ENDPOINT_URL ({endpoint}) must be http://HOST[:PORT] or "
            "https://HOST[:PORT]"
        )
    # Credentials in either are refused, and not repeated: the message goes to logs.
    elsewhere = "give the credentials as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead"
    assert settings_error(TRAINSERVE_S3_ENDPOINT_URL="http://KEY:SECRET@minio:9000").problem == (
        f"TRAINSERVE_S3_ENDPOINT_URL must not hold credentials (http://USER:SECRET@...): "
        f"{elsewhere}"
    )
    assert settings_error(TRAINSERVE_ARTIFACTS_URL="s3://KEY:SECRET@models/a").problem == (
        f"TRAINSERVE_ARTIFACTS_URL must not hold credentials (USER:SECRET@): {elsewhere}"
    )


@pytest.mark.parametrize(
    "command",
    [[TRAINSERVE, "api", "--port", "1"], [TRAINSERVE, "up"], [sys.executable, "-m", "workers"]],
    ids=["api", "up", "worker"],
)
def test_a_process_with_a_bad_setting_ends_with_one_line(env: Env, command: list[str]) -> None:
    missing = env.root / "secrets" / "admin_key"
    ended = subprocess.run(
        command,
        env={**os.environ, "TRAINSERVE_ADMIN_KEY_FILE": str(missing)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ended.returncode == 1
    assert ended.stdout == ""
    assert ended.stderr == (
        f"trainserve: cannot start: TRAINSERVE_ADMIN_KEY_FILE names {missing}, which does not "
        "exist\n"
    )


def test_api_workers_is_a_number_or_auto(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINSERVE_API_WORKERS", "auto")
    assert Settings().api_workers == "auto"
    monkeypatch.setenv("TRAINSERVE_API_WORKERS", "3")
    assert Settings().api_workers == 3
    assert server_processes(3) == 3
    monkeypatch.delenv("TRAINSERVE_API_WORKERS")


@pytest.mark.parametrize("value", ["0", "513", "12345", "-1", "1.5", "²", "٣", "", "many"])
def test_api_workers_refuses_what_is_not_a_count(env: Env, value: str) -> None:
    assert str(settings_error(TRAINSERVE_API_WORKERS=value)) == (
        f"trainserve: cannot start: TRAINSERVE_API_WORKERS: {value!r}: give a number of server "
        "processes from 1 to 512, or auto"
    )


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here")
def test_auto_is_one_process_per_core_of_the_affinity(env: Env) -> None:
    # In a process of its own: narrowing this one's affinity would narrow the test run's.
    one_core = min(os.sched_getaffinity(0))
    script = (
        f"import os; os.sched_setaffinity(0, {{{one_core}}}); "
        "from app.cli.server import server_processes; print(server_processes('auto'))"
    )
    answer = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert answer.stdout == "1\n"
