"""A listening socket of its own for each server process (SO_REUSEPORT, Linux only).

With one socket shared by every process, as uvicorn does by default, each new connection goes
to whichever process calls accept() first, and with keep-alive clients that choice lasts: 64
connections opened at once split 37/27 or 38/26 between two processes, and throughput followed
the busier one. With a socket per process in one SO_REUSEPORT group, Linux picks the listener by
a hash of each connection's addresses and ports, whatever the processes are doing. Elsewhere
SO_REUSEPORT is missing (Windows) or gives every connection to one socket (macOS, the BSDs), so
the processes share one socket as uvicorn makes it.

SO_REUSEPORT would also let another process of the same user join the group unnoticed: a second
`trainserve api` on the port, or server processes left behind by a supervisor killed with
SIGKILL. The supervisor therefore holds the port (hold_port) while it runs, and its server
processes stop when it dies (app/parent_death.py).
"""

import contextlib
import socket
import sys
from collections.abc import Iterator
from typing import Any

Address = tuple[Any, ...]


class PortTaken(Exception):
    """Another trainserve api holds the port."""


def per_process_listeners() -> bool:
    """Whether server processes listen with a socket each (where the kernel spreads
    connections among the sockets of a SO_REUSEPORT group: Linux)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


@contextlib.contextmanager
def hold_port(port: int) -> Iterator[None]:
    """Hold `port` for this process, or raise PortTaken if another trainserve api holds it.

    The hold is an abstract Unix socket named after the port (Linux): like the port, it belongs
    to the network namespace, and it is released when the process ends, however it ends.
    """
    holder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        holder.bind(f"\0trainserve-api-port-{port}")
    except OSError:
        holder.close()
        raise PortTaken(f"port {port} is in use by another trainserve api") from None
    with holder:
        yield


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
    """What the supervisor hands each server process: each process that receives it binds a
    socket of its own to the same address. The supervisor's own is bound, so that a port held
    by a socket outside the group (another server) fails at once and a port 0 is chosen once,
    but it never listens, so the kernel gives it no connection. It does not keep out sockets
    that join the group: hold_port does."""

    def __init__(self, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        placeholder = _reusable(family)
        super().__init__(family, fileno=placeholder.detach())
        try:
            self.bind((host, port))
        except OSError:
            self.close()
            raise

    def __reduce__(self) -> tuple[Any, ...]:
        # Handed to a process by pickling: it gets a socket of its own, not a copy of this one.
        return own_listener, (self.family, self.getsockname())
