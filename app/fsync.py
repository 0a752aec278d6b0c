"""Making a rename durable: what the model files, the dataset tensors and the local artifact
store all need, in one place that imports nothing of theirs."""

import os
from pathlib import Path


def fsync_folder(folder: Path) -> None:
    """Make the entries of `folder` (a rename into it) durable."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
