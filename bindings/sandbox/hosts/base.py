"""The seam between the sandbox binding and a container engine: everything ploy asks of "a container
host". containers.py, manager.py and status.py talk to a ContainerHost, never to Podman directly for a
sandbox's container; local.py (Podman's CLI on this machine) and remote.py (a Podman REST API
service, `podman system service`, here or on another machine) implement it."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bindings.sandbox.agent_client import AgentClient

# The agent's TCP port inside a remote sandbox (published on the host's address, on a port Podman picks).
AGENT_PORT = 8790


@dataclass
class RunSpec:
    """One sandbox container as ploy makes it, whatever the host."""

    name: str
    image: str
    labels: dict[str, str]
    hostname: str
    memory: str
    cpus: float
    pids: int
    caps: str
    run_dir: Path  # on this machine; a local host bind-mounts it at /run/ploy
    env: dict[str, str] = field(default_factory=dict)


class ContainerHost(abc.ABC):
    """A place sandboxes run. Container names are ploy's (`ploy-<token>`); states are Podman's words
    ('running', 'exited', 'paused', ...), None when the container does not exist."""

    name: str
    remote: bool

    @abc.abstractmethod
    async def run(self, spec: RunSpec) -> None:
        """Create and start the container (the image must be on the host: ensure_image)."""

    @abc.abstractmethod
    async def ensure_image(self, image: str) -> None:
        """Make `image` (present on this machine) present on the host."""

    @abc.abstractmethod
    async def image_exists(self, ref: str) -> bool: ...

    @abc.abstractmethod
    async def start(self, name: str) -> None: ...

    @abc.abstractmethod
    async def stop(self, name: str, timeout: int) -> None: ...

    @abc.abstractmethod
    async def remove(self, name: str) -> None:
        """Force-remove; no error when it does not exist."""

    @abc.abstractmethod
    async def state(self, name: str) -> str | None: ...

    @abc.abstractmethod
    async def inspect(self, name: str) -> dict[str, Any] | None:
        """Podman's record of the container (State, Config, NetworkSettings, ...), or None."""

    @abc.abstractmethod
    async def ps(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        """Every container (any state) carrying all `labels`, as `podman ps --format json` rows
        (Names, State, Labels)."""

    @abc.abstractmethod
    async def logs(self, name: str, tail: int) -> str: ...

    @abc.abstractmethod
    def agent(self, name: str, socket_path: Path) -> AgentClient:
        """The control channel to the agent of container `name`."""
