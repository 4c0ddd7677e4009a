"""Loads a Python worker module: `async def fetch(request, env)` or a `default` object with `fetch`."""

from __future__ import annotations

import importlib.util
import inspect
import itertools
import sys
import traceback
from pathlib import Path
from typing import Any

from bindings.web import WebResponse
from runtime.http import Request, Response
from runtime.workers.base import WorkerError

_generation = itertools.count(1)


class Env:
    """`env.SANDBOX` and `env["SANDBOX"]` both work; vars are strings."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

    def __getitem__(self, name: str) -> Any:
        return self.__dict__[name]

    def __contains__(self, name: object) -> bool:
        return name in self.__dict__

    def get(self, name: str, default: Any = None) -> Any:
        return self.__dict__.get(name, default)

    def __repr__(self) -> str:
        return f"Env({', '.join(self.__dict__)})"


def _user_stack(exc: BaseException, root: Path) -> str:
    """The traceback without ploy's own frames, so it points at the user's file and line."""
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve().is_relative_to(root)
    ]
    lines = traceback.format_list(frames) if frames else traceback.format_tb(exc.__traceback__)
    return (
        "Traceback (most recent call last):\n"
        + "".join(lines)
        + "".join(traceback.format_exception_only(exc))
    )


class PythonWorker:
    def __init__(self, fetch: Any, env: Env, root: Path) -> None:
        self._fetch, self._env, self._root = fetch, env, root

    @classmethod
    def load(cls, path: Path, env: dict[str, Any], root: Path) -> PythonWorker:
        # A fresh module name per load so a hot reload never sees the previous version's module.
        name = f"ploy_worker_{next(_generation)}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise WorkerError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.parent))
        try:
            spec.loader.exec_module(module)
        except Exception as e:
            raise WorkerError(f"{type(e).__name__}: {e}", _user_stack(e, root)) from e
        finally:
            sys.path.remove(str(path.parent))
        fetch = getattr(module, "fetch", None)
        default = getattr(module, "default", None)
        if fetch is None and default is not None:
            fetch = default.get("fetch") if isinstance(default, dict) else getattr(default, "fetch", None)
        if not callable(fetch):
            raise WorkerError(f"{path} has no `async def fetch(request, env)` (nor a `default` with fetch)")
        return cls(fetch, Env(env), root)

    async def fetch(self, request: Request, log_prefix: str) -> Response:
        try:
            result = self._fetch(request, self._env)
            if inspect.isawaitable(result):
                result = await result
        except Exception as e:
            raise WorkerError(f"{type(e).__name__}: {e}", _user_stack(e, self._root)) from e
        if isinstance(result, Response):
            return result
        if isinstance(result, WebResponse):  # a binding's answer returned as it is (sandbox.terminal())
            return Response._from_web(result)
        raise WorkerError(f"fetch() must return a Response, got {type(result).__name__}")

    async def close(self) -> None:
        pass
