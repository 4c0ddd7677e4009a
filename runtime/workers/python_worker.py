"""Loads a Python worker module: `async def fetch(request, env)` or a `default` object with `fetch`.

The worker runs on the server's event loop (no process boundary: a request costs a function call), so
what it does must not take the server down (runtime/watchdog.py stops code that holds the loop):
whatever its import raises (SystemExit, KeyboardInterrupt, os._exit, an endless loop the watchdog
abandons) is a WorkerError, and the previous version keeps serving; so is whatever a request raises.
Each request's fetch runs in a task of its own that nothing but the loop holds: a request waiting on
something no one else can resolve (`await asyncio.Future()`) is garbage once it is collected, and is
answered 500 "the worker will never respond", as workerd does.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import inspect
import itertools
import sys
import time
import traceback
import weakref
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from bindings.web import WebResponse
from runtime.http import Request, Response
from runtime.watchdog import WorkerInterrupt, guard
from runtime.workers.base import WorkerError

_generation = itertools.count(1)
NEVER = "the worker will never respond"
# A request pending this long makes the loop look for requests that can never settle (a full
# collection finds them), at most every COLLECT_EVERY_S.
NEVER_CHECK_S = 1.0
COLLECT_EVERY_S = 2.0


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


@guard("import")
def _import(spec: Any, module: Any) -> None:
    spec.loader.exec_module(module)


class PythonWorker:
    def __init__(self, fetch: Any, env: Env, root: Path) -> None:
        self._fetch, self._env, self._root = fetch, env, root
        self._started: dict[int, float] = {}  # request number -> when it started, while it is pending
        self._numbers = itertools.count()
        self._sweep: asyncio.TimerHandle | None = None
        self._collected_at = 0.0

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
            _import(spec, module)
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # `sys.exit()` or an abandoned import must not end ploy dev
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
        answer, task = self._detach(self._run(request, log_prefix), log_prefix)
        number = next(self._numbers)
        self._started[number] = time.monotonic()
        if self._sweep is None:
            self._sweep = asyncio.get_running_loop().call_later(NEVER_CHECK_S, self._look_for_never)
        try:
            return await answer
        except asyncio.CancelledError:
            t = task()
            if t is not None:
                t.cancel()
            raise
        finally:
            del self._started[number]

    @staticmethod
    def _detach(
        coro: Coroutine[Any, Any, Response], log_prefix: str
    ) -> tuple[asyncio.Future[Response], weakref.ref[asyncio.Task[Response]]]:
        """The request in a task that only the loop holds: when what it awaits can never be resolved,
        the task is garbage, and its collection answers the request. The whole request runs in that one
        task (a cancel scope, a contextvar or current_task() taken in one step holds in the next)."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Response] = loop.create_future()
        task = loop.create_task(coro)
        task._log_destroy_pending = False  # type: ignore[attr-defined]  # the finalizer reports it
        never = weakref.finalize(task, _never, loop, answer, log_prefix)

        def done(t: asyncio.Task[Response]) -> None:
            never.detach()
            _settle(answer, t)

        task.add_done_callback(done)
        return answer, weakref.ref(task)

    @guard("request")
    async def _run(self, request: Request, log_prefix: str) -> Response:
        try:
            result = self._fetch(request, self._env)
            if inspect.isawaitable(result):
                result = await result
        except (asyncio.CancelledError, GeneratorExit):  # cancelled, or collected (never settling)
            raise
        except WorkerInterrupt as e:
            raise WorkerError(f"Error: {e}", _user_stack(e, self._root)) from e
        except BaseException as e:  # SystemExit, KeyboardInterrupt: a 500, not the end of ploy dev
            raise WorkerError(f"{type(e).__name__}: {e}", _user_stack(e, self._root)) from e
        if isinstance(result, Response):
            return result
        if isinstance(result, WebResponse):  # a binding's answer returned as it is (sandbox.terminal())
            return Response._from_web(result)
        raise WorkerError(f"fetch() must return a Response, got {type(result).__name__}")

    def _look_for_never(self) -> None:
        """While requests are pending, collect garbage now and then: a request that can never settle is
        only found once its task is collected."""
        self._sweep = None
        if not self._started:
            return
        now = time.monotonic()
        if now - min(self._started.values()) >= NEVER_CHECK_S and now - self._collected_at >= COLLECT_EVERY_S:
            self._collected_at = now
            gc.collect()
        self._sweep = asyncio.get_running_loop().call_later(NEVER_CHECK_S, self._look_for_never)

    async def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None


def _settle(answer: asyncio.Future[Response], task: asyncio.Task[Response]) -> None:
    if answer.done():
        return
    if task.cancelled():
        answer.cancel()
    elif (exc := task.exception()) is not None:
        answer.set_exception(exc)
    else:
        answer.set_result(task.result())


def _never(loop: asyncio.AbstractEventLoop, answer: asyncio.Future[Response], log_prefix: str) -> None:
    """The request's task was collected while pending (a finalizer: it may run in any thread)."""

    def settle() -> None:
        if not answer.done():
            answer.set_exception(
                WorkerError(
                    f"Error: {NEVER}",
                    f"Error: {NEVER}: its fetch() awaits something nothing else holds (a Future or an Event "
                    "no timer, I/O or other code can resolve), so it can never finish",
                    log_line=f"{log_prefix} {NEVER}: its fetch() awaits something nothing else can resolve",
                )
            )

    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:
        pass  # the loop is closed: nobody waits for the answer
