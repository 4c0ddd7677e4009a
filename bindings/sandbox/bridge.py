"""The Podman bridge's MAC address, pinned so connections from sandboxes to the host survive.

Shared by the sandbox backend (which starts the containers that change the bridge) and the AI gateway
(whose listener sandboxes reach through the bridge).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

FALLBACK_INTERFACE = "podman0"


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
        done = subprocess.run(["ip", "link", "set", "dev", interface, "address", mac], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return True if done.returncode == 0 else None
