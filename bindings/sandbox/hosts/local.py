"""This machine's Podman through its CLI (bindings/podman): the default host, and the only one when no
host is configured (`ploy hosts`). The agent is reached over the unix socket in the bind-mounted run
folder (~1.5 ms per exec; nothing listens on the network).

Why the CLI for creating and the REST API only for starting: bench/multihost.py prints create+start of
one container through the CLI and through a local API service side by side (179 vs 133 ms on a quiet
machine): the difference is the podman process each CLI call starts. A sandbox with a disk limit is
made in two steps (create, then start once its layer sits on its disk), so the second step goes to a
shared API service (bindings/podman/api.py, falling back to the CLI), which brings that cold start back
to about what one `podman run -d` costs. Creating stays with the CLI: its flags are the one description
of a sandbox's container, and exec and files never touch Podman (they go to the agent)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from bindings import podman
from bindings.podman import api as podman_api
from bindings.podman.bridge import pin_bridge_mac
from bindings.sandbox.agent_client import AgentClient
from bindings.sandbox.hosts.base import ContainerHost, RunSpec

LOCAL = "local"


class LocalHost(ContainerHost):
    name = LOCAL
    remote = False

    def container_args(self, spec: RunSpec) -> list[str]:
        """`podman create`/`run`'s options for `spec` (the image not included)."""
        args = [
            "--pull=never",
            "--name",
            spec.name,
            *podman.RUNTIME_FLAGS,
            *podman.ULIMIT_FLAGS,
            "--memory",
            spec.memory,
            "--memory-swap",
            spec.memory,
            "--cpus",
            str(spec.cpus),
            "--pids-limit",
            str(spec.pids),
            "--cap-drop",
            "ALL",
            "--cap-add",
            spec.caps,
            "--security-opt",
            "no-new-privileges",
            "--stop-timeout",
            "3",
            "-v",
            f"{spec.run_dir}:/run/ploy",
            "--hostname",
            spec.hostname,
        ]
        for k, v in spec.labels.items():
            args += ["--label", f"{k}={v}"]
        for k, v in spec.env.items():
            args += ["-e", f"{k}={v}"]
        return args

    async def run(self, spec: RunSpec) -> None:
        await podman.run("run", "-d", *self.container_args(spec), spec.image)
        await asyncio.to_thread(pin_bridge_mac)

    async def ensure_image(self, image: str) -> None:
        return None  # built here (image.py)

    async def image_exists(self, ref: str) -> bool:
        return await podman.image_exists(ref)

    async def start(self, name: str) -> None:
        await podman_api.start(name)  # the bridge is pinned by the caller, which knows which

    async def stop(self, name: str, timeout: int) -> None:
        await podman.run("stop", "-t", str(timeout), name, check=False)

    async def remove(self, name: str) -> None:
        await podman.remove(name)

    async def state(self, name: str) -> str | None:
        return await podman.container_state(name)

    async def inspect(self, name: str) -> dict[str, Any] | None:
        res = await podman.run("container", "inspect", "--format", "json", name, check=False)
        if res.returncode != 0:
            return None
        data = json.loads(res.stdout or b"[]")
        return data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else None

    async def ps(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        return await podman.ps(labels)

    async def logs(self, name: str, tail: int) -> str:
        res = await podman.run("logs", "--tail", str(tail), name, check=False)
        return res.stderr.decode(errors="replace")

    def agent(self, name: str, socket_path: Path) -> AgentClient:
        return AgentClient(socket_path)
