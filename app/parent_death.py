"""Child processes that must not outlive the process that started them."""

import ctypes
import multiprocessing
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def signal_when_parent_dies(signum: signal.Signals) -> None:
    """Have Linux send `signum` to this process when its parent dies, even by SIGKILL.

    It takes effect from the call on: a caller should then check that its parent is still
    the one it expects (the parent may have died just before).
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signum)


def stop_with_supervisor(signum: signal.Signals = signal.SIGTERM) -> None:
    """In a process that multiprocessing started (each server process under uvicorn's
    supervisor): be sent `signum` when the supervisor dies, even by SIGKILL, and at once if it
    already has. Left behind, a server process would go on taking the port's connections.
    Nothing to do in a process that multiprocessing did not start."""
    supervisor = multiprocessing.parent_process()
    if supervisor is None:
        return
    signal_when_parent_dies(signum)
    if os.getppid() != supervisor.pid:  # it died before the call above
        os.kill(os.getpid(), signum)
