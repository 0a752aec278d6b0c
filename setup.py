"""Which packages the wheel holds; everything else about the project is in pyproject.toml.

The Alembic scripts stay in the top-level alembic/ folder, where `alembic revision` writes them,
and go into the wheel as the package app.migration_scripts so that an installed trainserve can
migrate its database. pyproject.toml cannot add a mapped package to those it finds, and a fixed
list there would silently leave out every new package: hence this file.
"""

from setuptools import find_namespace_packages, setup

MIGRATIONS_PACKAGE = "app.migration_scripts"

setup(
    packages=[
        *find_namespace_packages(include=["app", "app.*", "workers", "workers.*"]),
        MIGRATIONS_PACKAGE,
        f"{MIGRATIONS_PACKAGE}.versions",
    ],
    package_dir={MIGRATIONS_PACKAGE: "alembic"},
)
