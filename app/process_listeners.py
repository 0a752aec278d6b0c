"""A listening socket of its own for each server process (SO_REUSEPORT).

With one socket shared by every process, as uvicorn does by default, each new connection goes
to whichever process calls accept() first, and with keep-alive clients that choice lasts: 64
connections opened at once split 37/27 or 38/26 between two processes, and throughput followed
the busier one. With a socket per process in one SO_REUSEPORT group, the kernel picks the
listener by a hash of each connection's addresses and ports, whatever the processes are doing.
"""

import socket
from typing import Any

Address = tuple[Any, ...]


def _reusable(family: int) -> socket.socket:
    sock = socket.socket(family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    return sock


def own_listener(family: int, address: Address) -> socket.socket:
    """A socket bound to `address` in its SO_REUSEPORT group: the server listens on it."""
    sock = _reusable(family)
    sock.bind(address)
    return sock


class ListenerPerProcess(socket.socket):
    """What the supervisor hands each server process: it holds the port (so that a port in use
    fails at once, and a restarted process binds again), and each process that receives it
    binds a socket of its own to the same address. The supervisor's own never listens, so
    the kernel gives it no connection."""

    def __init__(self, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        placeholder = _reusable(family)
        super().__init__(family, fileno=placeholder.detach())
        self.bind((host, port))

    def __reduce__(self) -> tuple[Any, ...]:
        # Handed to a process by pickling: it gets a socket of its own, not a copy of this one.
        return own_listener, (self.family, self.getsockname())
