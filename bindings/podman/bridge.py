"""The Podman bridge: the host's address on it, and its MAC address pinned so connections from
containers to the host survive.

Shared by the sandbox backend (which starts the containers that change the bridge) and the AI gateway
(whose listener sandboxes reach through the bridge).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shutil
import subprocess
from pathlib import Path

FALLBACK_INTERFACE = "podman0"
FALLBACK_BRIDGE = "10.88.0.1"  # Podman's default network gateway


async def podman_bridge(network: str = "podman") -> tuple[str, str] | None:
    """(the host's address on the Podman network, the bridge interface's name), as containers see it.

    PLOY_AI_BRIDGE_ADDR overrides the address; without Podman there is no bridge (and no sandboxes)."""
    override = os.environ.get("PLOY_AI_BRIDGE_ADDR")
    if shutil.which("podman") is None:
        return (override, FALLBACK_INTERFACE) if override else None
    try:
        proc = await asyncio.create_subprocess_exec(
            "podman", "network", "inspect", network, "--format",
            "{{.NetworkInterface}} {{range .Subnets}}{{.Gateway}} {{end}}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=15)
    except (TimeoutError, OSError):
        return override or FALLBACK_BRIDGE, FALLBACK_INTERFACE
    words = out.decode().split()
    interface = words[0] if words else FALLBACK_INTERFACE
    for word in words[1:]:
        try:
            if ipaddress.ip_address(word).version == 4:
                return override or word, interface
        except ValueError:
            continue
    return override or FALLBACK_BRIDGE, interface


def pin_bridge_mac(interface: str = FALLBACK_INTERFACE) -> bool | None:
    """Fix the bridge's MAC address so it stops following its ports.

    Returns True if it pinned it now, False if there was nothing to do, None if pinning failed.

    A Linux bridge without an explicitly set address takes the lowest MAC among its ports, so each
    container that starts or stops can change it; long-lived containers then keep sending to the old
    MAC (their ARP entry for the gateway address is stale) and lose every connection to the host for
    seconds to tens of seconds. Setting the address (to its current value) makes it stick until
    Podman deletes the bridge. Needs CAP_NET_ADMIN (ploy runs Podman as root); a no-op otherwise."""
    sysfs = Path("/sys/class/net") / interface
    try:
        if (sysfs / "addr_assign_type").read_text().strip() == "3":  # NET_ADDR_SET: already pinned
            return False
        mac = (sysfs / "address").read_text().strip()
    except OSError:
        return False  # no bridge yet: Podman creates it with the first container
    try:
        done = subprocess.run(
            ["ip", "link", "set", "dev", interface, "address", mac], capture_output=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return True if done.returncode == 0 else None
