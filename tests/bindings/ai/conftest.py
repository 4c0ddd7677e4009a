"""Fixtures the AI tests share: isolated homes, a gateway stack per module, a fake upstream provider.

A module overrides one by defining a fixture of the same name (test_ai_local's stack talks to the
local model only; test_ai_signin's homes are per test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bindings.ai.fake_upstream import FakeUpstream
from bindings.ai.testing import AiStack, BackgroundLoop
from tests.conftest import isolated_homes


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Path]:
    with isolated_homes(tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])) as base:
        yield base


@pytest.fixture(scope="module")
def stack(homes: Path) -> Iterator[AiStack]:
    project = homes / "project"
    project.mkdir()
    s = AiStack(project)
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _fresh(request: pytest.FixtureRequest) -> None:
    """Each test starts with an empty call log and neither recording nor replaying."""
    if "stack" in request.fixturenames:
        s = request.getfixturevalue("stack")
        s.reset()
        s.configure()


@pytest.fixture(scope="module")
def upstream_loop() -> Iterator[tuple[BackgroundLoop, FakeUpstream]]:
    """A fake upstream provider on its own event loop thread (tests drive it from outside any loop)."""
    bg = BackgroundLoop()

    async def start() -> FakeUpstream:
        return await FakeUpstream().start()

    up = bg.run(start())
    yield bg, up
    bg.run(up.close())
    bg.stop()


@pytest.fixture(scope="module")
def upstream(upstream_loop: tuple[BackgroundLoop, FakeUpstream]) -> FakeUpstream:
    return upstream_loop[1]
