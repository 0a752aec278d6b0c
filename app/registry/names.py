"""What a model, an alias or a tag may be called; the alias that serves by default."""

import re
from typing import Annotated

from pydantic import BeforeValidator, Field

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_NAME = re.compile(NAME_PATTERN)
PRODUCTION = "production"
VERSION_MAX = 2**31 - 1
TAGS_MAX = 32
TAG_VALUE_MAX_CHARS = 256
DESCRIPTION_MAX_CHARS = 4000


def is_name(value: str) -> bool:
    return _NAME.fullmatch(value) is not None


def _checked_name(value: object) -> object:
    # Before the pattern check, to say what is meant rather than quote the regular expression.
    if isinstance(value, str) and not is_name(value):
        raise ValueError(
            f"{value[:70]!r} is not a valid name: 1 to 64 characters of a-z, 0-9, '.', '_' "
            "and '-', starting with a letter or digit"
        )
    return value


# A model's or an alias's name: lower case, so that "CIFAR10" and "cifar10" are never two models.
Name = Annotated[str, Field(pattern=NAME_PATTERN), BeforeValidator(_checked_name)]
Tags = Annotated[
    dict[
        Annotated[str, Field(min_length=1, max_length=64)],
        Annotated[str, Field(max_length=TAG_VALUE_MAX_CHARS)],
    ],
    Field(max_length=TAGS_MAX),
]
Description = Annotated[str, Field(max_length=DESCRIPTION_MAX_CHARS)]
