"""Record AI calls to a file and replay them: agent tests that need no network, no key and no tokens,
and answer the same every run.

**The file** is JSON Lines, one call a line, appended as each call completes::

    {"time": "2025-06-01T12:00:00.000Z", "provider": "openai", "method": "POST",
     "endpoint": "/chat/completions", "model": "openai/gpt-5.5", "usage": {"input": 31, "output": 4},
     "request": {"model": "openai/gpt-5.5", "messages": [...]},
     "response": {"status": 200, "ms": 412.5, "headers": {"content-type": "application/json"},
                  "json": {"id": "chatcmpl-...", "choices": [...]}}}

`request` is the body as the client sent it; `"byDefault": true` marks a call whose provider was the
default one (a bare model name), so replay routes bare names the same way whatever the default is then. `response.json` is the body parsed (with `"style"` when
the provider did not write compact JSON, so replay gives back the same bytes); a body that is not JSON
is `text` (or `base64`). A streamed response has `events` instead, each with `ms` (after the request
arrived), the SSE `event` name if it had one and its `data` (parsed when it is a JSON object or array,
else the string, e.g. "[DONE]"); an event that is not plain `event:`/`data:` lines is kept `raw`.
Response headers kept: content-type and the request-id ones. API keys and tokens are never written:
requests carry them only in headers, which are not recorded, and any string that looks like one
(the provider keys in use, `ploy_ai_…` gateway tokens, `sk-…` keys) is replaced by `[redacted]`.

**Matching.** A request is answered by a recorded call with the same provider (after routing: the
prefix, else the default provider as it was when recording), method, endpoint (the path after /v1,
`/v1/v1/…` folded, with its query), model (without the `openai/`/`anthropic/`/`local/` prefix) and
normalised body. Normalising drops `model` (compared above), keys whose value is null and
`"stream": false`, writes a message `content` (and Anthropic's `system`) given as a string as the one
text block it stands for, makes 2.0 and 2 equal, and ignores key order. Identical requests are answered
by their recordings in file order; after the last one it starts again from the first (a test suite can
run twice against one `ploy dev`). A request that matches none is answered 404 naming the closest
recorded call (file line) and what differs. The file is re-read when it changes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bindings.ai.credentials import PROVIDERS
from bindings.ai.exchange import Answer
from bindings.yaml_reader import ConfigError

KEPT_HEADERS = ("content-type", "request-id", "x-request-id")
_STYLES: dict[str, dict[str, Any]] = {
    "compact": {"separators": (",", ":"), "ensure_ascii": False},
    "compact-ascii": {"separators": (",", ":")},
    "spaced": {"ensure_ascii": False},
    "spaced-ascii": {},
    "indent": {"indent": 2, "ensure_ascii": False},
    "indent-ascii": {"indent": 2},
}
_EVENT = re.compile(r"(?:event: ?([^\n]*)\n)?data: ?([^\n]*)\n\n", re.S)
_SECRETS = re.compile(
    r"ploy_ai_[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}|sk-ant-[A-Za-z0-9_-]{16,}|sk-[A-Za-z0-9_-]{20,}"
)
REDACTED = "[redacted]"


class ReplayMiss(Exception):
    """No recorded call matches; the message names the closest one and what differs."""


# -- JSON as it was written ------------------------------------------------------------------------


def encode(obj: Any, style: str = "compact") -> str:
    return json.dumps(obj, **_STYLES.get(style, _STYLES["compact"]))


def _readable(text: str, prefer: str | None) -> tuple[Any, str] | None:
    """(the parsed object or array, the style that writes it back byte for byte), or None."""
    if text[:1] not in ("{", "["):
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    for style in ([prefer] if prefer else []) + list(_STYLES):
        if encode(obj, style) == text:
            return obj, style
    return None


def _body_fields(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(body).decode()}
    found = _readable(text, None)
    if found is None:
        return {"text": text}
    obj, style = found
    return {"json": obj} if style == "compact" else {"json": obj, "style": style}


def _body_bytes(response: dict[str, Any]) -> bytes:
    if "json" in response:
        return encode(response["json"], response.get("style", "compact")).encode()
    if "base64" in response:
        return base64.b64decode(response["base64"])
    return str(response.get("text", "")).encode()


def _event_fields(raw: bytes, ms: float, style: str | None) -> tuple[dict[str, Any], str | None]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"ms": ms, "raw": raw.decode("latin-1")}, style
    m = _EVENT.fullmatch(text)
    if m is None:
        return {"ms": ms, "raw": text}, style
    name, data = m.groups()
    out: dict[str, Any] = {"ms": ms}
    if name is not None:
        out["event"] = name
    found = _readable(data, style)
    if found is None:
        out["data"] = data
    else:
        out["data"] = found[0]
        if style is None:
            style = found[1]
        elif found[1] != style:
            out["style"] = found[1]
    if _event_bytes(out, style) != raw:  # not in the plain form (spaces, CRs): keep it as it came
        return {"ms": ms, "raw": text}, style
    return out, style


def _event_bytes(event: dict[str, Any], style: str | None) -> bytes:
    if "raw" in event:
        return str(event["raw"]).encode("utf-8")
    data = event.get("data")
    text = data if isinstance(data, str) else encode(data, event.get("style") or style or "compact")
    name = event.get("event")
    return ((f"event: {name}\n" if name is not None else "") + f"data: {text}\n\n").encode()


# -- matching --------------------------------------------------------------------------------------


def _canon(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _canon(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_canon(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _blocks(content: Any) -> Any:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def normalise(body: Any) -> Any:
    """The request body as matching sees it (see the module's docstring)."""
    if not isinstance(body, dict):
        return _canon(body)
    out = {k: v for k, v in body.items() if k != "model"}
    if out.get("stream") is False:
        del out["stream"]
    if isinstance(out.get("messages"), list):
        out["messages"] = [
            {**m, "content": _blocks(m["content"])} if isinstance(m, dict) and "content" in m else m
            for m in out["messages"]
        ]
    if "system" in out:
        out["system"] = _blocks(out["system"])
    return _canon(out)


def upstream_model(model: str | None) -> str | None:
    if model is None:
        return None
    prefix, sep, rest = model.partition("/")
    return rest if sep and prefix in PROVIDERS and rest else model


@dataclass(frozen=True)
class Call:
    """What a request is matched on."""

    provider: str
    method: str
    endpoint: str
    model: str | None  # without the provider prefix
    body: Any  # normalised

    def key(self) -> str:
        canon = json.dumps(self.body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        head = f"{self.provider} {self.method} {self.endpoint} {self.model}\n"
        return hashlib.sha256((head + canon).encode()).hexdigest()

    def describe(self) -> str:
        model = f", model {self.model!r}" if self.model else ""
        return f"{self.method} /v1{self.endpoint} ({self.provider}{model})"


def _show(value: Any, other: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    if isinstance(value, str) and isinstance(other, str):
        i = next(
            (n for n, (x, y) in enumerate(zip(value, other, strict=False)) if x != y),
            min(len(value), len(other)),
        )
        start = max(0, i - 24)
        piece = value[start : i + 40]
        return (
            ("…" if start else "")
            + json.dumps(piece, ensure_ascii=False)
            + ("…" if i + 40 < len(value) else "")
        )
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 90 else text[:90] + "…"


_ABSENT = object()


def differences(recorded: Any, sent: Any, path: str = "", out: list[tuple[str, Any, Any]] | None = None,
                limit: int = 200) -> list[tuple[str, Any, Any]]:  # fmt: skip
    """(path, recorded value, sent value) where the two differ, depth first, at most `limit` of them."""
    out = [] if out is None else out
    if len(out) >= limit:
        return out
    if isinstance(recorded, dict) and isinstance(sent, dict):
        for k in sorted(set(recorded) | set(sent)):
            differences(
                recorded.get(k, _ABSENT), sent.get(k, _ABSENT), f"{path}.{k}" if path else k, out, limit
            )
    elif isinstance(recorded, list) and isinstance(sent, list):
        for i, (a, b) in enumerate(zip(recorded, sent, strict=False)):
            differences(a, b, f"{path}[{i}]", out, limit)
        if len(recorded) != len(sent) and len(out) < limit:
            out.append((path or "(body)", f"{len(recorded)} items", f"{len(sent)} items"))
    elif recorded != sent or type(recorded) is not type(sent):
        out.append((path or "(body)", recorded, sent))
    return out


# -- the file --------------------------------------------------------------------------------------


@dataclass
class Recorded:
    line: int
    call: Call
    by_default: bool
    response: dict[str, Any]
    usage: tuple[int | None, int | None]

    def answer(self) -> Answer:
        r = self.response
        headers = {str(k): str(v) for k, v in (r.get("headers") or {}).items()}
        status = int(r.get("status", 200))
        if isinstance(r.get("events"), list):
            style = r.get("style")
            events = [(float(e.get("ms", 0)), _event_bytes(e, style)) for e in r["events"]]
            return Answer(status, headers, events=events, usage=self.usage)
        error = None if status < 400 else _body_bytes(r)[:300].decode("utf-8", "replace")
        return Answer(
            status, headers, body=_body_bytes(r), ms=float(r.get("ms", 0)), usage=self.usage, error=error
        )


def _usage(entry: dict[str, Any]) -> tuple[int | None, int | None]:
    usage = entry.get("usage") or {}
    return usage.get("input"), usage.get("output")


def load(path: Path) -> list[Recorded]:
    """The calls in a recording; a malformed line is a ConfigError naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, None, "", f"cannot read the recording: {exc.strerror}") from None
    calls = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            call = Call(str(entry["provider"]), str(entry.get("method", "POST")), str(entry["endpoint"]),
                        upstream_model(entry.get("model")), normalise(entry.get("request")))  # fmt: skip
            response = entry["response"]
            if not isinstance(response, dict):
                raise TypeError("response is not an object")
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(path, n, "", f"not a recorded call ({type(exc).__name__}: {exc})") from None
        calls.append(Recorded(n, call, entry.get("byDefault") is True, response, _usage(entry)))
    return calls


class Replayer:
    """Answers calls from a recording (see the module's docstring)."""

    def __init__(self, path: Path, speed: float = 1.0) -> None:
        self.path = path
        self.speed = speed
        self._stamp: tuple[int, int] | None = None
        self.calls: list[Recorded] = []
        self._by_key: dict[str, list[Recorded]] = {}
        self._next: dict[str, int] = {}
        self.recorded_default: str | None = None  # the default provider when recording (bare model names)
        self.refresh()

    def refresh(self) -> None:
        """Re-read the file if it changed since (raises ConfigError when it is broken)."""
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise ConfigError(self.path, None, "", f"cannot read the recording: {exc.strerror}") from None
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        calls = load(self.path)
        self.calls, self._stamp, self._next = calls, stamp, {}
        self._by_key = {}
        for rec in calls:
            self._by_key.setdefault(rec.call.key(), []).append(rec)
        by_default = next((r for r in calls if r.by_default), None)
        self.recorded_default = by_default.call.provider if by_default else None

    def answer(self, call: Call) -> Recorded:
        key = call.key()
        found = self._by_key.get(key)
        if not found:
            raise ReplayMiss(self.explain(call))
        n = self._next.get(key, 0)
        self._next[key] = n + 1
        return found[n % len(found)]

    def explain(self, call: Call) -> str:
        head = f"no recorded call in {self.path} matches {call.describe()}"
        if not self.calls:
            return head + ": the recording is empty"

        def rank(rec: Recorded) -> tuple[int, int, int]:
            c = rec.call
            mismatched = sum((c.provider != call.provider, c.method != call.method, c.endpoint != call.endpoint,
                              c.model != call.model))  # fmt: skip
            return mismatched, len(differences(c.body, call.body)), rec.line

        best = min(self.calls, key=rank)
        c = best.call
        diffs: list[str] = []
        for label, a, b in (("provider", c.provider, call.provider), ("method", c.method, call.method),
                            ("endpoint", c.endpoint, call.endpoint), ("model", c.model, call.model)):  # fmt: skip
            if a != b:
                diffs.append(f"{label}: recorded {_show(a, b)} but got {_show(b, a)}")
        found = differences(c.body, call.body)
        diffs += [f"{p}: recorded {_show(a, b)} but got {_show(b, a)}" for p, a, b in found[:4]]
        if len(found) > 4:
            diffs.append(f"and {len(found) - 4} more difference(s)")
        return f"{head}. Closest: line {best.line}, {c.describe()}, which differs in " + "; ".join(
            diffs or ["nothing"]
        )


# -- recording -------------------------------------------------------------------------------------


@dataclass
class Recorder:
    """Appends each completed call to the file, one JSON line, with keys and tokens redacted."""

    path: Path
    secrets: list[str] = field(default_factory=list)  # exact strings never to write (provider keys)
    count: int = 0

    def add(self, call: Call, client_model: str | None, by_default: bool, request: Any, status: int,
            headers: dict[str, str], body: bytes | None, events: list[tuple[float, bytes]] | None, ms: float,
            usage: tuple[int | None, int | None]) -> None:  # fmt: skip
        response: dict[str, Any] = {"status": status, "ms": round(ms, 2)}
        response["headers"] = {
            k: v for k, v in ((k.lower(), v) for k, v in headers.items()) if k in KEPT_HEADERS
        }
        if events is not None:
            style: str | None = None
            out = []
            for due, raw in events:
                fields_, style = _event_fields(raw, round(due, 2), style)
                out.append(fields_)
            if style and style != "compact":
                response["style"] = style
            response["events"] = out
        else:
            response.update(_body_fields(body or b""))
        entry: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "provider": call.provider,
            "method": call.method,
            "endpoint": call.endpoint,
            "model": client_model,
        }
        if by_default:
            entry["byDefault"] = True
        if usage != (None, None):
            entry["usage"] = {"input": usage[0], "output": usage[1]}
        entry["request"] = request
        entry["response"] = response
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":"))
        for secret in self.secrets:
            if len(secret) >= 8:
                line = line.replace(secret, REDACTED)
        line = _SECRETS.sub(REDACTED, line)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        self.count += 1
