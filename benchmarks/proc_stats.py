"""What /proc says of a server: the CPU time of its processes, and how its connections are
spread between them."""

import os
from pathlib import Path

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
ESTABLISHED = "01"


def process_tree(root: int) -> list[int]:
    """`root` and every process descended from it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(root: int) -> float:
    """User and system CPU time of `root` and its descendants, those still running."""
    total = 0
    for pid in process_tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS_PER_S


def connections_by_process(root: int, port: int) -> list[int]:
    """For each process of the tree holding client connections on `port`: how many, largest
    first."""
    established = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port and fields[3] == ESTABLISHED:
                established.add(fields[9])  # the socket's inode
    counts = []
    for pid in process_tree(root):
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        held = sum(1 for link in links if link.startswith("socket:[") and link[8:-1] in established)
        if held:
            counts.append(held)
    return sorted(counts, reverse=True)
