"""Three Podman API services in network namespaces (rig.py), the sandbox image in each (sent there
once per run), and SandboxBindings whose sandboxes go to them. Everything is removed at the end, also
when a test fails (the fixtures' finalizers)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bindings.context import BindingContext, project_key
from bindings.sandbox import SandboxBinding
from bindings.sandbox.options import SandboxOptions
from tests.bindings.sandbox.conftest import Loop
from tests.multihost.rig import Rig, available

HOSTS = 3


@pytest.fixture(scope="session")
def mh_loop() -> Iterator[Loop]:
    loop = Loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def rig(mh_loop: Loop) -> Iterator[Rig]:
    why = available()
    if why:
        pytest.skip(f"multihost rig: {why}")
    from bindings.sandbox import image as images
    from bindings.sandbox.hosts.config import add_host
    from bindings.sandbox.hosts.remote import RemoteHost

    image = mh_loop.run(images.ensure_image(), timeout=900)
    r = Rig(HOSTS)
    try:
        r.start()
        for i, h in enumerate(r.hosts):
            add_host(f"h{i}", h.url, path=r.base / "hosts.json")

        async def send_image() -> None:
            import asyncio

            await asyncio.gather(
                *(RemoteHost(f"h{i}", h.url).ensure_image(image) for i, h in enumerate(r.hosts))
            )

        mh_loop.run(send_image(), timeout=900)
        yield r
    finally:
        r.close()


class MhBindings:
    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        self.made: list[SandboxBinding] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="ploy-mh-t-"))

    def make(self, project: str = "mh", home: str = "home", **opts: Any) -> SandboxBinding:
        root = self.tmp / project
        root.mkdir(exist_ok=True)
        ctx = BindingContext(
            project_root=root, project_name=project, project_key=project_key(root), state_dir=self.tmp / home
        )
        opts.setdefault("pool", 0)
        opts.setdefault("memory", "256m")
        b = SandboxBinding(ctx, SandboxOptions(binding="SANDBOX", **opts))
        self.made.append(b)
        return b

    def close(self) -> None:
        import shutil

        from bindings.sandbox.containers import home_label
        from tests.conftest import remove_podman_leftovers

        for b in self.made:
            try:
                self.loop.run(b.close(), timeout=30)
            except Exception:
                pass
        # what the tests placed on this machine (its containers, and the networks they were made on)
        for home in {b.ctx.state_dir for b in self.made}:
            remove_podman_leftovers(home_label(home), home)
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture
def mh(rig: Rig, mh_loop: Loop, monkeypatch: pytest.MonkeyPatch) -> Iterator[MhBindings]:
    # only this test's bindings see the hosts (a binding reads them when it is made)
    monkeypatch.setenv("PLOY_HOSTS_FILE", str(rig.base / "hosts.json"))
    b = MhBindings(mh_loop)
    yield b
    b.close()
