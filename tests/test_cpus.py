"""Usable cores: the affinity, capped by a CPU quota of the process's cgroup or one above it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.cpus import cpu_quota

V2 = "0::/kubepods/pod1/container\n"
V1 = "12:memory:/docker/abc\n11:cpu,cpuacct:/docker/abc\n"


def cgroups(tmp_path: Path, memberships: str, files: dict[str, str]) -> tuple[Path, Path]:
    """A cgroup file system under tmp_path with these files, and a /proc/self/cgroup."""
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    own = tmp_path / "self-cgroup"
    own.write_text(memberships)
    return root, own


@pytest.mark.parametrize(
    ("files", "cores"),
    [
        ({"kubepods/pod1/container/cpu.max": "150000 100000\n"}, 2),  # 1.5 cores: 2 processes
        ({"kubepods/pod1/container/cpu.max": "100000 100000\n"}, 1),
        ({"kubepods/pod1/container/cpu.max": "max 100000\n"}, None),
        # The tightest of the cgroup's and those above it (a pod's limit).
        (
            {
                "kubepods/pod1/container/cpu.max": "800000 100000\n",
                "kubepods/pod1/cpu.max": "300000 100000\n",
                "cpu.max": "max 100000\n",
            },
            3,
        ),
        ({}, None),  # no cpu controller files
    ],
)
def test_cgroup_v2_quota(tmp_path: Path, files: dict[str, str], cores: int | None) -> None:
    assert cpu_quota(*cgroups(tmp_path, V2, files)) == cores


@pytest.mark.parametrize(("quota_us", "cores"), [("250000", 3), ("50000", 1), ("-1", None)])
def test_cgroup_v1_quota(tmp_path: Path, quota_us: str, cores: int | None) -> None:
    files = {
        "cpu/docker/abc/cpu.cfs_quota_us": quota_us,
        "cpu/docker/abc/cpu.cfs_period_us": "100000",
    }
    assert cpu_quota(*cgroups(tmp_path, V1, files)) == cores


def test_without_a_cgroup_file_system_there_is_no_quota(tmp_path: Path) -> None:
    assert cpu_quota(tmp_path / "none", tmp_path / "no-self-cgroup") is None


@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs CPU affinity and two cores",
)
@pytest.mark.parametrize(("cpu_max", "cores"), [("max 100000", 2), ("100000 100000", 1)])
def test_usable_cpus_is_the_affinity_capped_by_the_quota(
    tmp_path: Path, cpu_max: str, cores: int
) -> None:
    root, own = cgroups(tmp_path, "0::/\n", {"cpu.max": cpu_max})
    two = sorted(os.sched_getaffinity(0))[:2]
    # In a process of its own: narrowing this one's affinity would narrow the test run's.
    script = (
        f"import os, pathlib; os.sched_setaffinity(0, {two}); from app.cpus import usable_cpus; "
        f"print(usable_cpus(pathlib.Path({str(root)!r}), pathlib.Path({str(own)!r})))"
    )
    answer = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert answer.stdout == f"{cores}\n"
