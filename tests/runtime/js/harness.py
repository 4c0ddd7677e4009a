"""Helpers for the JS worker tests (no tests here): load a module into a JsWorker and call it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runtime.http import Request, Response
from runtime.workers.base import Limits, WorkerError
from runtime.workers.js_worker import JsWorker

JS_DIR = Path(__file__).resolve().parent / "fixtures"


class Harness:
    def __init__(self, worker: JsWorker, logs: list[str]) -> None:
        self.worker = worker
        self.logs = logs

    @classmethod
    async def load(
        cls, path: Path, env: dict[str, Any] | None = None, limits: Limits | None = None
    ) -> Harness:
        logs: list[str] = []
        worker = await JsWorker.load(
            path, env or {}, limits or Limits(cpu_ms=2000, memory_mb=64), logs.append
        )
        return cls(worker, logs)

    async def request(
        self,
        path: str = "/",
        method: str = "GET",
        headers: dict[str, str] | None = None,
        body: bytes | str | None = None,
        prefix: str = "[test]",
    ) -> Response:
        req = Request("http://localhost:8787" + path, method=method, headers=headers, body=body)
        return await self.worker.fetch(req, prefix)

    async def eval(self, code: str) -> Any:
        """Runs `code` as an async function body in the eval worker; returns its JSON result."""
        resp = await self.request("/", method="POST", body=code)
        assert resp.status == 200, resp.status
        return json.loads(await resp.arrayBuffer())

    async def eval_error(self, code: str) -> WorkerError:
        try:
            await self.eval(code)
        except WorkerError as e:
            return e
        raise AssertionError("expected the code to throw")

    async def close(self) -> None:
        await self.worker.close()


def write_module(tmp: Path, source: str, name: str = "worker.js") -> Path:
    path = tmp / name
    path.write_text(source)
    return path
