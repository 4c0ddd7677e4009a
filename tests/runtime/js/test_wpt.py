"""The vendored web-platform-tests (wpt/ beside this file) in a ploy JS worker: every subtest passes,
except those wpt/expectations.toml lists with their reason; a listed subtest that passes fails too,
so the list stays true. wpt/README.md says how to run one file and how to refresh the tests."""

from __future__ import annotations

import asyncio

import pytest

from tests.runtime.js.wpt import runner

FILES = runner.test_files()
_results: dict[str, runner.FileResult] = {}


def _all_results() -> dict[str, runner.FileResult]:
    # every file at once (CONCURRENCY workers on one loop): a few seconds, not one file after another
    if not _results:
        _results.update(asyncio.run(runner.run_all(FILES)))
    return _results


@pytest.mark.parametrize("rel", [f.relative_to(runner.UPSTREAM).as_posix() for f in FILES])
def test_wpt_file(rel: str) -> None:
    result = _all_results()[rel]
    fails = runner.failures(result)
    expected = runner.expectations().get(rel, {})
    unexpected = {name: what[:300] for name, what in fails.items() if name not in expected}
    assert not unexpected, f"{len(unexpected)} unexpected failures in {rel}"
    passing_now = sorted(name for name in expected if name not in fails)
    assert not passing_now, f"listed in expectations.toml but passing: {passing_now}"


def test_expectations_name_only_vendored_files_and_stay_short() -> None:
    expected = runner.expectations()
    known = {f.relative_to(runner.UPSTREAM).as_posix() for f in FILES}
    assert set(expected) <= known, sorted(set(expected) - known)
    import tomllib

    data = tomllib.loads(runner.EXPECTATIONS.read_text())
    by_design = sum(len(g["subtests"]) for g in data.get("by_design", []))
    assert by_design < 200, by_design
    assert all(g["reason"].strip() for g in data.get("by_design", []) + data.get("not_yet", []))
