"""Log output shared by the API, the worker and the command line."""

import logging


def configure_logging(level: str) -> None:
    """Timestamped log lines on stderr at `level` (set once per process)."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
