"""The decoded tensors the API keeps memory-mapped for its image route: at most
MAPPED_BYTES_KEPT of files (the last one mapped whatever its size), least recently used let go
first. Memory-mapped, they cost the pages read.

Each file stays open for as long as it is mapped: in a bucket's cache it keeps its name, so it
is counted in the cache's size, and no eviction takes it. A file removed meanwhile (its dataset
deleted, by this process or another) is let go at the next request, so that its disk is freed.
"""

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from app.datasets.tensors import DecodedTensors, open_tensors
from app.storage.store import ArtifactStore

MAPPED_BYTES_KEPT = 2 * 1024**3

Payload = dict[str, torch.Tensor]


@dataclass
class _Mapping:
    payload: Payload
    held: contextlib.ExitStack  # the open file
    path: Path  # reaches the open file (app/storage/store.py path_of_open)
    inode: int
    size: int

    def removed(self) -> bool:
        """Whether the file is no longer where it was (deleted, or replaced)."""
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            return True
        return status.st_nlink == 0 or status.st_ino != self.inode


class MappedTensors:
    def __init__(self, max_bytes: int = MAPPED_BYTES_KEPT) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._mappings: OrderedDict[DecodedTensors, _Mapping] = OrderedDict()

    def get(self, store: ArtifactStore, data_dir: Path, tensors: DecodedTensors) -> Payload:
        """The tensors' file, memory-mapped: verified by its sha256 when first mapped (a file
        under a key is never written again), then kept mapped."""
        with self._lock:
            self._let_go_of(lambda _, mapping: mapping.removed())
            mapping = self._mappings.get(tensors)
            if mapping is not None:
                self._mappings.move_to_end(tensors)
                return mapping.payload
        mapping = _map(store, data_dir, tensors)  # a download, perhaps: no lock held
        with self._lock:
            known = self._mappings.setdefault(tensors, mapping)
            if known is not mapping:  # mapped meanwhile by another request
                mapping.held.close()
            self._mappings.move_to_end(tensors)
            self._fit()
            return known.payload

    def forget(self, dataset_id: str) -> None:
        """Let go of a deleted dataset's tensors."""
        with self._lock:
            self._let_go_of(lambda tensors, _: tensors.dataset_id == dataset_id)

    def mapped_bytes(self) -> int:
        with self._lock:
            return sum(mapping.size for mapping in self._mappings.values())

    def _let_go_of(self, gone: Callable[[DecodedTensors, _Mapping], bool]) -> None:
        for tensors, mapping in list(self._mappings.items()):
            if gone(tensors, mapping):
                del self._mappings[tensors]
                mapping.held.close()

    def _fit(self) -> None:
        total = sum(mapping.size for mapping in self._mappings.values())
        while total > self.max_bytes and len(self._mappings) > 1:
            _, oldest = self._mappings.popitem(last=False)
            oldest.held.close()  # a request still reading its tensors keeps the mapping
            total -= oldest.size


def _map(store: ArtifactStore, data_dir: Path, tensors: DecodedTensors) -> _Mapping:
    held = contextlib.ExitStack()
    try:
        path = held.enter_context(open_tensors(store, data_dir, tensors))
        status = os.stat(path)
        payload: Payload = torch.load(path, mmap=True, weights_only=True)
    except BaseException:
        held.close()
        raise
    return _Mapping(payload, held, path, status.st_ino, status.st_size)


MAPPED_TENSORS = MappedTensors()
