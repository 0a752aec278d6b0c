"""A weights file's id: what a job names in init_from, and the folder its file lives in."""

import secrets

WEIGHTS_ID_PREFIX = "wt-"
WEIGHTS_ID_PATTERN = rf"^{WEIGHTS_ID_PREFIX}[0-9a-f]{{12}}$"


def new_weights_id() -> str:
    return WEIGHTS_ID_PREFIX + secrets.token_hex(6)
