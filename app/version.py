"""The installed package's version, read once."""

from functools import cache
from importlib.metadata import version


@cache
def package_version() -> str:
    return version("trainserve")
