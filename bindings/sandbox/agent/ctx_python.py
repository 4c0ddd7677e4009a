"""A Python code context: one long-lived interpreter whose globals carry over from run to run.

Started by the agent (interpreter.py) as `python3 ctx_python.py SOCKET READY_FD [LEASH_FD]`; stdlib only,
python 3.9-compatible, and it imports none of the agent's modules (user code runs in this process).
It listens on SOCKET, writes to READY_FD once it does, and serves one agent connection at a time with
JSON lines: requests `{"op": "init", "cwd", "env"}` / `{"op": "run", "code"}`, and for a run a
stream of `{"type": "stdout"|"stderr", "text"}`, `{"type": "result", ...formats}`, `{"type": "error",
"name", "value", "traceback"}`, then `{"type": "done", "executionCount"}`.

A spare (started ahead of need, with LEASH_FD) exits when the agent closes the leash before claiming
it with `init`, so an agent that dies leaves no spare behind.
"""

from __future__ import annotations

import ast
import base64
import json
import linecache
import os
import signal
import socket
import sys
import threading
import time
import traceback
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or ".") == HERE:
    sys.path[0] = ""  # imports resolve against the context's cwd, as in a notebook, never the agent's folder
os.environ.setdefault("MPLBACKEND", "Agg")

_send_lock = threading.Lock()
_conn: socket.socket | None = None
_claimed = threading.Event()
_count = 0
_loop: Any = None


def _send(msg: dict[str, Any]) -> None:
    data = (json.dumps(msg, default=str) + "\n").encode()
    with _send_lock:
        if _conn is not None:
            try:
                _conn.sendall(data)
            except OSError:
                pass


class _Out:
    """sys.stdout / sys.stderr while code runs: whole lines go to the agent at once, the rest on flush."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.buf = ""
        self.lock = threading.Lock()

    def write(self, text: Any) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self.lock:
            self.buf += text
            cut = self.buf.rfind("\n") + 1
            if cut:
                chunk, self.buf = self.buf[:cut], self.buf[cut:]
            else:
                chunk = ""
        if chunk:
            _send({"type": self.kind, "text": chunk, "timestamp": time.time() * 1000})
        return len(text)

    def flush(self) -> None:
        with self.lock:
            chunk, self.buf = self.buf, ""
        if chunk:
            _send({"type": self.kind, "text": chunk, "timestamp": time.time() * 1000})

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        raise OSError("the code context's output is not a file descriptor")


_FORMATS = (
    ("_repr_html_", "html"),
    ("_repr_markdown_", "markdown"),
    ("_repr_svg_", "svg"),
    ("_repr_png_", "png"),
    ("_repr_jpeg_", "jpeg"),
    ("_repr_latex_", "latex"),
    ("_repr_json_", "json"),
    ("_repr_javascript_", "javascript"),
)
_MIME = {
    "text/plain": "text",
    "text/html": "html",
    "text/markdown": "markdown",
    "image/svg+xml": "svg",
    "image/png": "png",
    "image/jpeg": "jpeg",
    "text/latex": "latex",
    "application/json": "json",
    "application/javascript": "javascript",
}


def _b64(value: Any) -> Any:
    return base64.b64encode(value).decode() if isinstance(value, (bytes, bytearray)) else value


def _figure_png(fig: Any) -> str:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _formats(value: Any) -> dict[str, Any]:
    """Every representation the value offers (IPython's display protocol), plus its repr as text."""
    out: dict[str, Any] = {}
    bundle = getattr(value, "_repr_mimebundle_", None)
    if callable(bundle):
        try:
            data = bundle()
            data = data[0] if isinstance(data, tuple) else data
            for mime, key in _MIME.items():
                if isinstance(data, dict) and mime in data:
                    out[key] = _b64(data[mime])
        except Exception:
            pass
    for attr, key in _FORMATS:
        method = getattr(value, attr, None)
        if key not in out and callable(method) and not isinstance(value, type):
            try:
                rendered = method()
            except Exception:
                continue
            if isinstance(rendered, tuple):  # (data, metadata)
                rendered = rendered[0]
            if rendered is not None:
                out[key] = _b64(rendered)
    if type(value).__module__.startswith("matplotlib.figure") and "png" not in out:
        try:
            out["png"] = _figure_png(value)
        except Exception:
            pass
    if "json" not in out and isinstance(value, (dict, list)):
        try:
            json.dumps(value)
            out["json"] = value
        except (TypeError, ValueError):
            pass
    if "text" not in out:
        try:
            out["text"] = repr(value)
        except Exception as exc:
            out["text"] = f"<repr failed: {type(exc).__name__}: {exc}>"
    return out


def display(*objs: Any) -> None:
    """Show a value now, as a result of this run (IPython's display())."""
    for obj in objs:
        _send({"type": "result", **_formats(obj)})


def _figures() -> None:
    """Figures matplotlib holds after a run become PNG results (then are closed), as in a notebook."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    try:
        for num in plt.get_fignums():
            _send({"type": "result", "png": _figure_png(plt.figure(num))})
        plt.close("all")
    except Exception as exc:  # a broken figure must not break the run's reply
        _send({"type": "stderr", "text": f"could not render a matplotlib figure: {exc}\n"})


_namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__, "display": display}


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _run_code(code_obj: Any) -> Any:
    """eval() a compiled piece; a top-level await makes it a coroutine, run on the context's own loop."""
    global _loop
    result = eval(code_obj, _namespace)
    if code_obj.co_flags & 0x80:  # CO_COROUTINE: the code awaited at top level
        import asyncio

        if _loop is None:
            _loop = asyncio.new_event_loop()
            asyncio.set_event_loop(_loop)
        task = _loop.create_task(result)
        try:
            result = _loop.run_until_complete(task)
        except BaseException:
            task.cancel()
            raise
    return result


def _user_traceback(exc: BaseException) -> list[str]:
    """The traceback from the user's code down: the runner's own frames are dropped."""
    lines = traceback.format_exception_only(type(exc), exc)
    if not isinstance(exc, SyntaxError):
        asyncio_dir = os.path.dirname(getattr(sys.modules.get("asyncio"), "__file__", "") or "") or "\0"
        frames = [
            f
            for f in traceback.extract_tb(exc.__traceback__)
            if f.filename != __file__ and not f.filename.startswith(asyncio_dir)
        ]
        if frames:
            lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames), *lines]
    return [line.rstrip("\n") for line in lines]


def run(code: str) -> None:
    global _count
    _count += 1
    filename = f"<cell-{_count}>"
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    flags = getattr(ast, "PyCF_ALLOW_TOP_LEVEL_AWAIT", 0)
    out, err = _Out("stdout"), _Out("stderr")
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    signal.signal(signal.SIGINT, _interrupt)
    try:
        tree = ast.parse(code, filename, "exec")
        last = None
        tail = tree.body[-1] if tree.body else None
        if isinstance(tail, ast.Expr):
            tree.body.pop()
            last = ast.Expression(tail.value)
        if tree.body:
            _run_code(compile(tree, filename, "exec", flags=flags))
        if last is not None:
            value = _run_code(compile(last, filename, "eval", flags=flags))
            if value is not None:
                _namespace["_"] = value
                display(value)
        out.flush()
        err.flush()
        _figures()
    except BaseException as exc:  # noqa: BLE001 - every error of user code is a result
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        out.flush()
        err.flush()
        if isinstance(exc, SystemExit):
            _send({"type": "error", "name": "SystemExit", "value": str(exc.code), "traceback": []})
        else:
            _send(
                {
                    "type": "error",
                    "name": type(exc).__name__,
                    "value": str(exc),
                    "traceback": _user_traceback(exc),
                }
            )
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sys.stdout, sys.stderr = saved
    _send({"type": "done", "executionCount": _count})


def init(msg: dict[str, Any]) -> None:
    env = msg.get("env")
    if isinstance(env, dict):
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in env.items()})
        os.environ.setdefault("MPLBACKEND", "Agg")
    if msg.get("cwd"):
        os.chdir(msg["cwd"])
    _claimed.set()
    _send({"type": "done", "executionCount": _count, "pid": os.getpid()})


def serve(conn: socket.socket) -> None:
    global _conn
    _conn = conn
    buf = b""
    try:
        while True:
            data = conn.recv(1 << 20)
            if not data:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                msg = json.loads(line)
                if msg.get("op") == "init":
                    init(msg)
                elif msg.get("op") == "run":
                    run(str(msg.get("code", "")))
    except OSError:
        return
    finally:
        _conn = None
        conn.close()


def _leash(fd: int) -> None:
    try:
        while os.read(fd, 1):
            pass
    except OSError:
        pass
    if not _claimed.is_set():
        os._exit(0)


def main() -> None:
    path, ready_fd = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if len(sys.argv) > 3:
        threading.Thread(target=_leash, args=(int(sys.argv[3]),), daemon=True).start()
    else:
        _claimed.set()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if os.path.exists(path):
        os.unlink(path)
    server.bind(path)
    server.listen(4)
    os.write(ready_fd, b"ready\n")
    os.close(ready_fd)
    while True:
        conn, _ = server.accept()
        serve(conn)


if __name__ == "__main__":
    main()
