"""The reliability suite: attacks from inside real sandboxes and through the binding API, and faults
(agents killed, containers stopped, paused or removed behind ploy's back, `ploy dev` killed mid-call),
each asserting that nothing is lost and the next call works. Every test here needs Podman.

The sandbox fixtures are the SANDBOX tests' own (one loop, one home, one image, containers shared
where a test allows): imported here so pytest registers them for this folder too.
"""

from __future__ import annotations

import pytest

from tests.bindings.sandbox.conftest import (  # noqa: F401
    Bindings,
    aloop,
    bindings,
    git_server,
    run,
    sandbox_home,
    sandbox_image,
    shared,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/reliability/" in str(item.fspath):
            item.add_marker(pytest.mark.podman)
