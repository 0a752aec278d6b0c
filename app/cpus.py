"""How many CPU cores this process may use: its affinity, capped by its cgroup's CPU quota.

Both the server (`--workers auto`) and the training worker (its offer, its threads) size
themselves by it. The affinity is what taskset, cpusets and `docker --cpuset-cpus` narrow; a
quota (`docker --cpus`, a Kubernetes CPU limit) leaves every core in the affinity but lets the
process use only so much CPU time, so more processes or threads than the quota only queue.
"""

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
OWN_CGROUPS = Path("/proc/self/cgroup")


def usable_cpus(cgroup_root: Path = CGROUP_ROOT, own_cgroups: Path = OWN_CGROUPS) -> int:
    """Cores this process may run on (its affinity; every core where the platform has none, as
    on macOS), capped by its cgroup's CPU quota rounded up; at least 1."""
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    quota = cpu_quota(cgroup_root, own_cgroups)
    return max(1, cores if quota is None else min(cores, quota))


def cpu_quota(cgroup_root: Path = CGROUP_ROOT, own_cgroups: Path = OWN_CGROUPS) -> int | None:
    """The tightest CPU quota of this process's cgroup and those above it, in cores rounded up
    (1.5 cores is 2); None where there is none, or no cgroup file system (not Linux)."""
    try:
        memberships = own_cgroups.read_text().splitlines()
    except OSError:
        return None
    quotas = []
    for line in memberships:
        _hierarchy, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2: "0::/path", limits in <path>/cpu.max
            folders, read = _up_from(cgroup_root, path), _v2_quota
        elif "cpu" in controllers.split(","):  # cgroup v1: the cpu controller's own hierarchy
            folders, read = _up_from(cgroup_root / "cpu", path), _v1_quota
        else:
            continue
        quotas += [quota for quota in map(read, folders) if quota is not None]
    return min(quotas, default=None)


def _up_from(mount: Path, path: str) -> list[Path]:
    """The cgroup's folder and those above it, up to the mount (where a container's own
    cgroup namespace puts its cgroup)."""
    if ".." in Path(path).parts:  # a cgroup outside this namespace's view: only the mount's
        return [mount]
    folder = mount / path.strip("/")
    return [folder, *folder.parents[: len(folder.parents) - len(mount.parents)]]


def _v2_quota(folder: Path) -> int | None:
    # cpu.max: "<quota> <period>" in microseconds, or "max <period>" for none.
    try:
        quota, period = (folder / "cpu.max").read_text().split()
    except (OSError, ValueError):
        return None
    return None if quota == "max" else _cores(int(quota), int(period))


def _v1_quota(folder: Path) -> int | None:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota < 0 else _cores(quota, period)  # -1: none


def _cores(quota_us: int, period_us: int) -> int | None:
    return max(1, math.ceil(quota_us / period_us)) if quota_us > 0 and period_us > 0 else None
