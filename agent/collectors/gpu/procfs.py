"""Who a GPU process is, from /proc: its name and, when it runs in a container, the container id.

NVML reports host pids. Inside a container, mount the host's /proc (e.g. at /host/proc) and set
gpu.proc_root, or the names fall back to what NVML reports and container ids stay empty."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# docker (cgroup v1 and v2 "docker-<id>.scope"), containerd / CRI ("cri-containerd-<id>.scope"),
# CRI-O ("crio-<id>.scope"), podman ("libpod-<id>.scope"): all end the path with a 64-hex id.
_CONTAINER_ID = re.compile(r"(?<![0-9a-f])([0-9a-f]{64})(?![0-9a-f])")


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    name: str
    container: str


def container_id(cgroup_text: str) -> str:
    """The container id in a /proc/<pid>/cgroup text, or "" for a process outside containers."""
    for line in cgroup_text.splitlines():
        path = line.split(":", 2)[-1]
        found = _CONTAINER_ID.findall(path)
        if found:
            return str(found[-1])
    return ""


def read_identity(proc_root: Path, pid: int) -> ProcessIdentity | None:
    """Name and container of `pid` under `proc_root`, or None when /proc does not show the pid."""
    base = proc_root / str(pid)
    try:
        name = (base / "comm").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    try:
        cgroup = (base / "cgroup").read_text(encoding="utf-8", errors="replace")
    except OSError:
        cgroup = ""
    return ProcessIdentity(name, container_id(cgroup))
