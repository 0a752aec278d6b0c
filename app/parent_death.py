"""Child processes that must not outlive the process that started them."""

import ctypes
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
