"""Where settings come from besides the environment: the secret ones from files
(TRAINSERVE_ADMIN_KEY_FILE...), as container platforms hand secrets over; and a setting the
process cannot start with, said in one line."""

import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import PydanticBaseSettingsSource

ENV_PREFIX = "TRAINSERVE_"
# The settings that may come from a file named by <VARIABLE>_FILE instead of the variable.
FROM_FILES = ("admin_key", "predict_key", "database_url")


class SettingsError(SystemExit):
    """A setting the process cannot start with. A SystemExit: wherever it is raised, the process
    ends with this one line on stderr (status 1), not a traceback."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"trainserve: cannot start: {problem}")
        self.problem = problem


def _read_secret(variable: str, path: str) -> str:
    """The file's content without its trailing line breaks; a SettingsError naming the variable
    and the path when there is none to read."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(f"{variable} names {path}, which does not exist") from None
    except IsADirectoryError:
        raise SettingsError(f"{variable} names {path}, a directory, not a file") from None
    except PermissionError:
        raise SettingsError(f"{variable} names {path}, which this process may not read") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{variable} names {path}, which is not UTF-8 text") from None
    except OSError as exc:
        raise SettingsError(
            f"{variable} names {path}, which cannot be read: {exc.strerror}"
        ) from None
    value = text.rstrip("\r\n")  # the newline an editor or `echo` leaves is no part of a secret
    if not value:
        raise SettingsError(f"{variable} names {path}, which is empty")
    return value


class SecretFiles(PydanticBaseSettingsSource):
    """<VARIABLE>_FILE for the settings in FROM_FILES: the value is the named file's content.
    An empty variable counts as unset, as for the keys themselves."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # every value is read at once, in __call__

    def __call__(self) -> dict[str, Any]:
        # Names as the environment source reads them: case does not matter.
        environment = {name.upper(): value for name, value in os.environ.items()}
        values: dict[str, Any] = {}
        for field in FROM_FILES:
            variable = f"{ENV_PREFIX}{field.upper()}"
            path = environment.get(f"{variable}_FILE", "")
            if not path:
                continue
            if environment.get(variable, ""):
                raise SettingsError(
                    f"{variable} and {variable}_FILE are both set: set one of them, and leave "
                    "the other unset or empty"
                )
            values[field] = _read_secret(f"{variable}_FILE", path)
        return values


def describe(exc: ValidationError) -> str:
    """Each problem with the variable it came from: "TRAINSERVE_MAX_ATTEMPTS: ..."; the value
    itself is left out, since it may be a key."""
    problems = []
    for error in exc.errors():
        context = error.get("ctx") or {}
        # A validator's own message, without pydantic's "Value error, " before it.
        message = str(context["error"]) if error["type"] == "value_error" else error["msg"]
        location = error["loc"]
        problems.append(
            f"{ENV_PREFIX}{str(location[0]).upper()}: {message}" if location else message
        )
    return "; ".join(problems)
