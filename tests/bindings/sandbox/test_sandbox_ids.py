"""Any id a user has names its own sandbox (issue 13): the claim is a hash, the id is kept as given."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from bindings.sandbox.state import claim_name
from tests.bindings.sandbox.helpers import containers

pytestmark = pytest.mark.podman

Run = Callable[..., Any]

IDS = [
    "ana@example.com",
    "tenant/42:job",
    "tenant/42/job",
    "Box",
    "box",
    "a/b",
    "ab",
    "a_b",
    "with spaces and\ttab",
    "日本語 🌍",
    "f" * 64,
    "x" * 1024,
    "..",
]


def test_any_id_names_its_own_sandbox(run: Run, bindings: Any) -> None:
    b = bindings.make("any-ids")
    for sandbox_id in IDS:
        run(b.get(sandbox_id).writeFile("/workspace/whoami", sandbox_id))
    for sandbox_id in IDS:  # nothing shared: each reads back its own id (case and slashes matter)
        assert run(b.get(sandbox_id).readFile("/workspace/whoami"))["content"] == sandbox_id
    listed = {row["id"]: row for row in run(b.manager.list())}
    assert set(listed) == set(IDS)
    assert len({row["container"] for row in listed.values()}) == len(IDS)
    assert all(row["status"] == "running" for row in listed.values())
    # the label keeps the id as given, whatever its characters
    assert len(containers("ploy.id", "tenant/42:job")) == 1
    # claims on disk are safe names, one per id
    claims = os.listdir(b.manager.state.ids_dir)
    assert sorted(claims) == sorted(claim_name(i) for i in IDS)
    # a restarted host finds every one of them again
    again = bindings.make("any-ids")
    assert run(again.get("tenant/42:job").readFile("/workspace/whoami"))["content"] == "tenant/42:job"
    for sandbox_id in IDS:
        run(again.get(sandbox_id).destroy())
    assert run(again.manager.list()) == []


def test_a_claim_made_before_ids_were_hashed_is_still_found(run: Run, bindings: Any) -> None:
    """Sandboxes of today's simple ids have claims named by the plain id: they keep their sandbox (the
    claim is renamed to its hashed name) and are listed under their id."""
    first = bindings.make("legacy")
    run(first.get("old-box").writeFile("/workspace/kept", "from before"))
    run(first.get("other.one").exec("true"))
    ids_dir = first.manager.state.ids_dir
    run(first.close())
    # as the previous ploy left them: symlinks named by the plain ids
    for legacy in ("old-box", "other.one"):
        os.rename(ids_dir / claim_name(legacy), ids_dir / legacy)
    assert sorted(os.listdir(ids_dir)) == ["old-box", "other.one"]
    name = containers("ploy.id", "old-box")[0].split()[0]

    second = bindings.make("legacy")
    assert run(second.get("old-box").readFile("/workspace/kept"))["content"] == "from before"
    assert containers("ploy.id", "old-box")[0].split()[0] == name  # the same container, none new
    assert claim_name("old-box") in os.listdir(ids_dir) and "old-box" not in os.listdir(ids_dir)
    # listing renames the rest and shows the plain ids
    assert sorted(row["id"] for row in run(second.manager.list())) == ["old-box", "other.one"]
    assert sorted(os.listdir(ids_dir)) == sorted([claim_name("old-box"), claim_name("other.one")])
    for legacy in ("old-box", "other.one"):
        assert run(second.get(legacy).destroy())["destroyed"] is True
