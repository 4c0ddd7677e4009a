"""getMetrics inside the container: the container's own cgroup (v1 or v2) and network counters.

Read from files, never by asking Podman (`podman stats` takes ~100 ms a call). CPU use is a rate, so
the idle watch samples the CPU counter about once a second (sample()) and a call compares with the
sample a second or so old: it answers at once instead of measuring for a while. Disk use is the host's
part (the container's writable layer lives there).
"""

from __future__ import annotations

import os
import time
from collections import deque
from typing import Any

CGROUP = "/sys/fs/cgroup"
UNLIMITED = 1 << 60  # cgroup v1 writes "no limit" as a huge number
_samples: deque[tuple[float, float]] = deque(maxlen=8)  # (monotonic time, CPU seconds used)


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def _v2() -> bool:
    return os.path.exists(os.path.join(CGROUP, "cgroup.controllers"))


def cpu_seconds() -> float | None:
    if _v2():
        for line in (_read(os.path.join(CGROUP, "cpu.stat")) or "").splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec" and value.isdigit():
                return int(value) / 1e6
        return None
    ns = _int(_read(os.path.join(CGROUP, "cpuacct", "cpuacct.usage")))
    return None if ns is None else ns / 1e9


def cpu_limit() -> float:
    """Cores the sandbox may use: its CFS quota, else the machine's CPUs."""
    if _v2():
        quota, _, period = (_read(os.path.join(CGROUP, "cpu.max")) or "max").partition(" ")
        q, p = _int(quota), _int(period)
    else:
        raw = _read(os.path.join(CGROUP, "cpu", "cpu.cfs_quota_us"))
        q = _int(raw) if raw and not raw.startswith("-") else None
        p = _int(_read(os.path.join(CGROUP, "cpu", "cpu.cfs_period_us")))
    if q and p:
        return q / p
    return float(os.cpu_count() or 1)


def sample() -> None:
    used = cpu_seconds()
    if used is not None:
        _samples.append((time.monotonic(), used))


def _cpu() -> dict[str, Any]:
    now, used = time.monotonic(), cpu_seconds()
    cores = cpu_limit()
    percent = 0.0
    if used is not None:
        # the newest sample at least ~0.5 s old, else the oldest one: a rate over the last second or so
        base = next((s for s in reversed(_samples) if now - s[0] >= 0.5), _samples[0] if _samples else None)
        if base is not None and now - base[0] > 0.01:
            percent = max(0.0, (used - base[1]) / (now - base[0]) / cores * 100)
    return {
        "percent": round(min(percent, 100.0), 1),
        "cores": round(cores, 3),
        "totalSeconds": round(used or 0.0, 3),
    }


def _stat(text: str | None, key: str) -> int:
    for line in (text or "").splitlines():
        k, _, v = line.partition(" ")
        if k == key and v.isdigit():
            return int(v)
    return 0


def _machine_memory() -> int | None:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def _memory() -> dict[str, Any]:
    if _v2():
        usage = _int(_read(os.path.join(CGROUP, "memory.current"))) or 0
        limit = _int(_read(os.path.join(CGROUP, "memory.max")))
        inactive = _stat(_read(os.path.join(CGROUP, "memory.stat")), "inactive_file")
    else:
        base = os.path.join(CGROUP, "memory")
        usage = _int(_read(os.path.join(base, "memory.usage_in_bytes"))) or 0
        limit = _int(_read(os.path.join(base, "memory.limit_in_bytes")))
        inactive = _stat(_read(os.path.join(base, "memory.stat")), "total_inactive_file")
    if limit is None or limit >= UNLIMITED:
        limit = _machine_memory()
    # as `docker stats` counts it: page cache the kernel can drop at once is not "used"
    return {"used": max(usage - inactive, 0), "limit": limit}


def _pids() -> dict[str, Any]:
    base = CGROUP if _v2() else os.path.join(CGROUP, "pids")
    return {
        "current": _int(_read(os.path.join(base, "pids.current"))),
        "limit": _int(_read(os.path.join(base, "pids.max"))),
    }


def _network() -> dict[str, int]:
    rx = tx = 0
    for line in (_read("/proc/net/dev") or "").splitlines()[2:]:
        name, _, counters = line.partition(":")
        fields = counters.split()
        if name.strip() != "lo" and len(fields) >= 9:
            rx += int(fields[0])
            tx += int(fields[8])
    return {"rxBytes": rx, "txBytes": tx}


def collect() -> dict[str, Any]:
    return {"cpu": _cpu(), "memory": _memory(), "pids": _pids(), "network": _network()}
