"""The `local` provider: a scripted model that answers from a small rules file, in both wire formats.

`ploy login --provider local [--rules FILE]` signs you in with it (no key, no network). Models are
`local/NAME` (any NAME), or bare names when local is the default provider. Each call is answered by the
first rule, in file order, whose conditions all hold for the conversation's **last user message** (the
last user turn with text, not tool results):

    rules:
      - match: summarize              # the last user message contains this, in any case
        steps:                        # step N answers the Nth model call since that user message
          - tool: read_file
            arguments: {path: README.md}
          - tool: write_file
            arguments: {path: SUMMARY.md, content: "{{tool_result}}"}
          - text: Wrote SUMMARY.md.
      - regex: '^say (?P<word>\\w+)'   # a regular expression searched in the last user message
        text: "{{word}}"
      - model: fast-*                 # the model name after `local/`, a glob
        text: quick answer
      - text: "no rule for: {{user}}" # no condition: answers anything

A step (or a rule without `steps`) has `text`, one `tool` with its `arguments`, or several `tools`
(`[{name, arguments}]`), or text and tools together. Strings in text and arguments may use `{{user}}`
(the last user message), `{{tool_result}}` (the latest tool result), `{{1}}`/`{{name}}` (the regex's
groups). After the last step, the model answers the last step's text (or "done") and calls no tool, so
an agent loop ends. No rule matching is an error naming the message; no rules file at all answers
`echo: <last user message>`. The file is re-read when it changes. Answers are deterministic: the same
request gives the same bytes (ids are derived from the request, `created` is 0).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bindings.ai.exchange import SSE, Answer, json_answer, sse_event
from bindings.yaml_reader import ConfigError, Reader, compose, scalar_value

RULES_NAME = "ai-rules.yaml"  # the project's rules file when `ploy login --provider local` named none
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_RULE_KEYS = ("match", "regex", "model", "steps", "text", "tool", "arguments", "tools")
_STEP_KEYS = ("text", "tool", "arguments", "tools")


@dataclass(frozen=True)
class ToolUse:
    name: str
    arguments: Any


@dataclass(frozen=True)
class Step:
    text: str | None
    tools: tuple[ToolUse, ...]


@dataclass(frozen=True)
class Rule:
    line: int
    match: str | None
    regex: re.Pattern[str] | None
    model: str | None
    steps: tuple[Step, ...]


class RulesError(ConfigError):
    pass


# -- the rules file --------------------------------------------------------------------------------


def _value(node: yaml.Node) -> Any:
    return yaml.SafeLoader("").construct_object(node, deep=True)


def _step(r: Reader, node: yaml.Node, where: str, allowed: tuple[str, ...]) -> Step:
    text: str | None = None
    tools: list[ToolUse] = []
    tool_name: str | None = None
    arguments: Any = {}
    args_node: yaml.Node | None = None
    for key, key_node, value in r.mapping(node, where):
        name = f"{where}.{key}"
        if key not in allowed:
            raise r.error(key_node, name, f"unknown key (allowed: {', '.join(allowed)})")
        if key == "text":
            text = str(r.scalar(value, name, str, int, float, bool))
        elif key == "tool":
            tool_name = r.scalar(value, name, str)
        elif key == "arguments":
            arguments, args_node = _value(value), value
        elif key == "tools":
            if not isinstance(value, yaml.SequenceNode):
                raise r.error(value, name, "expected a list of {name, arguments}")
            for i, item in enumerate(value.value):
                entry = {k: v for k, _, v in r.mapping(item, f"{name}[{i}]")}
                if "name" not in entry or set(entry) - {"name", "arguments"}:
                    raise r.error(item, f"{name}[{i}]", "expected {name: TOOL, arguments: {...}}")
                tool_args = _value(entry["arguments"]) if "arguments" in entry else {}
                tools.append(ToolUse(r.scalar(entry["name"], f"{name}[{i}].name", str), tool_args))
    if args_node is not None and tool_name is None:
        raise r.error(args_node, f"{where}.arguments", "arguments need a `tool`")
    if tool_name is not None:
        tools.insert(0, ToolUse(tool_name, arguments))
    if text is None and not tools:
        raise r.error(node, where, "a step needs text, a tool or tools")
    return Step(text, tuple(tools))


def parse_rules(text: str, path: Path) -> list[Rule]:
    """The rules of a rules file; RulesError names the file, line and key of a mistake."""
    try:
        return _parse_rules(text, path)
    except RulesError:
        raise
    except ConfigError as exc:
        raise RulesError(exc.path, exc.line, exc.field, exc.message) from None


def _parse_rules(text: str, path: Path) -> list[Rule]:
    r = Reader(path)
    root = compose(text, path)  # its ConfigError becomes a RulesError in parse_rules
    if root is None:
        return []
    if isinstance(root, yaml.MappingNode):
        found = {k: v for k, _, v in r.mapping(root, "")}
        if set(found) - {"rules"}:
            raise r.error(root, "", "expected `rules:` (a list), nothing else")
        root = found.get("rules")
        if root is None or (isinstance(root, yaml.ScalarNode) and scalar_value(root) is None):
            return []
    if not isinstance(root, yaml.SequenceNode):
        raise r.error(root, "rules", "expected a list of rules")
    rules = []
    for i, node in enumerate(root.value):
        where = f"rules[{i}]"
        items = r.mapping(node, where)
        cond: dict[str, Any] = {}
        step_keys = []
        steps: tuple[Step, ...] = ()
        for key, key_node, value in items:
            name = f"{where}.{key}"
            if key not in _RULE_KEYS:
                raise r.error(key_node, name, f"unknown key (allowed: {', '.join(_RULE_KEYS)})")
            if key in ("match", "model"):
                cond[key] = r.scalar(value, name, str)
            elif key == "regex":
                try:
                    cond[key] = re.compile(r.scalar(value, name, str))
                except re.error as exc:
                    raise r.error(value, name, f"not a regular expression: {exc}") from None
            elif key == "steps":
                if not isinstance(value, yaml.SequenceNode) or not value.value:
                    raise r.error(value, name, "expected a list of steps")
                steps = tuple(_step(r, s, f"{name}[{j}]", _STEP_KEYS) for j, s in enumerate(value.value))
            else:
                step_keys.append(key)
        if steps and step_keys:
            raise r.error(node, where, f"give either steps or {'/'.join(step_keys)}, not both")
        if not steps:
            steps = (_step(r, node, where, _RULE_KEYS),)
        rules.append(
            Rule(node.start_mark.line + 1, cond.get("match"), cond.get("regex"), cond.get("model"), steps)
        )
    return rules


class RulesFile:
    """One rules file, re-read when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._rules: list[Rule] = []

    def rules(self) -> list[Rule]:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise RulesError(
                self.path, None, "", f"cannot read the local model's rules: {exc.strerror}"
            ) from None
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self._rules = parse_rules(self.path.read_text(encoding="utf-8"), self.path)
            self._stamp = stamp
        return self._rules


# -- reading the conversation ----------------------------------------------------------------------


@dataclass
class Conversation:
    last_user: str = ""
    tool_result: str = ""
    step: int = 0  # model calls answered since the last user message


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") in ("text", None)
        )
    return ""


def read_conversation(messages: Any) -> Conversation:
    conv = Conversation()
    for m in messages if isinstance(messages, list) else []:
        if not isinstance(m, dict):
            continue
        role, content = m.get("role"), m.get("content")
        if role == "assistant":
            conv.step += 1
        elif role == "tool":  # OpenAI: one message per tool result
            conv.tool_result = _text_of(content)
        elif role == "user":
            blocks = content if isinstance(content, list) else []
            results = [b for b in blocks if isinstance(b, dict) and b.get("type") == "tool_result"]
            if results:  # Anthropic: tool results come back in a user turn; not a new user message
                conv.tool_result = _text_of(results[-1].get("content"))
            else:
                conv.last_user, conv.step = _text_of(content), 0
    return conv


# -- answering -------------------------------------------------------------------------------------


class NoRule(Exception):
    pass


def choose(rules: list[Rule], conv: Conversation, model: str) -> tuple[Rule, dict[str, str]]:
    for rule in rules:
        if rule.model is not None and not fnmatch.fnmatchcase(model, rule.model):
            continue
        if rule.match is not None and rule.match.lower() not in conv.last_user.lower():
            continue
        groups: dict[str, str] = {}
        if rule.regex is not None:
            found = rule.regex.search(conv.last_user)
            if found is None:
                continue
            groups = {str(i): g or "" for i, g in enumerate(found.groups(), 1)}
            groups.update({k: v or "" for k, v in found.groupdict().items()})
        return rule, groups
    raise NoRule


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: names.get(m.group(1), m.group(0)), value)
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return value


def reply_for(rule: Rule, groups: dict[str, str], conv: Conversation) -> tuple[str | None, list[ToolUse]]:
    names = {**groups, "user": conv.last_user, "tool_result": conv.tool_result}
    if conv.step >= len(rule.steps):  # the script is done: answer text only, so the agent loop ends
        last = rule.steps[-1]
        return _fill(last.text if last.text is not None and not last.tools else "done", names), []
    step = rule.steps[conv.step]
    text = _fill(step.text, names) if step.text is not None else None
    return text, [ToolUse(t.name, _fill(t.arguments, names)) for t in step.tools]


def _words(text: str) -> list[str]:
    parts = text.split(" ")
    return [p if i == 0 else " " + p for i, p in enumerate(parts)]


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def openai_chat(
    body: dict[str, Any], model: str, ident: str, text: str | None, tools: list[ToolUse]
) -> Answer:
    calls: list[dict[str, Any]] = [{"id": f"call_{ident}_{i}", "type": "function",
              "function": {"name": t.name, "arguments": json.dumps(t.arguments, separators=(",", ":"))}}
             for i, t in enumerate(tools)]  # fmt: skip
    usage = {
        "prompt_tokens": _tokens(json.dumps(body.get("messages"))),
        "completion_tokens": _tokens(text or "") + 8 * len(tools),
    }
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    counts = (usage["prompt_tokens"], usage["completion_tokens"])
    finish = "tool_calls" if calls else "stop"
    cid = f"chatcmpl-local-{ident}"
    if not body.get("stream"):
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        if calls:
            message["tool_calls"] = calls
        return json_answer(200, {
            "id": cid, "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}], "usage": usage,
        }, counts)  # fmt: skip
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict[str, Any], reason: str | None = None) -> bytes:
        obj: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": 0, "model": model,
                               "choices": [{"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}]}  # fmt: skip
        if include_usage:
            obj["usage"] = None
        return sse_event(obj)

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": w}) for w in _words(text)] if text else []
    for i, call in enumerate(calls):
        fn = call["function"]
        head = {
            "index": i,
            "id": call["id"],
            "type": "function",
            "function": {"name": fn["name"], "arguments": ""},
        }
        events += [
            chunk({"tool_calls": [head]}),
            chunk({"tool_calls": [{"index": i, "function": {"arguments": fn["arguments"]}}]}),
        ]
    events.append(chunk({}, finish))
    if include_usage:
        tail = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [],
            "usage": usage,
        }
        events.append(sse_event(tail))
    events.append(sse_event("[DONE]"))
    return Answer(200, {"content-type": SSE}, events=[(0.0, e) for e in events], usage=counts)


def anthropic_messages(
    body: dict[str, Any], model: str, ident: str, text: str | None, tools: list[ToolUse]
) -> Answer:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    blocks += [
        {"type": "tool_use", "id": f"toolu_{ident}_{i}", "name": t.name, "input": t.arguments}
        for i, t in enumerate(tools)
    ]
    stop = "tool_use" if tools else "end_turn"
    in_tokens = _tokens(json.dumps([body.get("system"), body.get("messages")]))
    out_tokens = _tokens(text or "") + 8 * len(tools)
    message = {"id": f"msg_local_{ident}", "type": "message", "role": "assistant", "model": model, "content": blocks,
               "stop_reason": stop, "stop_sequence": None, "usage": {"input_tokens": in_tokens, "output_tokens": out_tokens}}  # fmt: skip
    if not body.get("stream"):
        return json_answer(200, message, (in_tokens, out_tokens))

    def event(kind: str, data: dict[str, Any]) -> bytes:
        return sse_event({"type": kind, **data}, kind)

    start = dict(message, content=[], stop_reason=None, usage={"input_tokens": in_tokens, "output_tokens": 1})
    events = [event("message_start", {"message": start})]
    for i, block in enumerate(blocks):
        if block["type"] == "text":
            events.append(
                event("content_block_start", {"index": i, "content_block": {"type": "text", "text": ""}})
            )
            events += [event("content_block_delta", {"index": i, "delta": {"type": "text_delta", "text": w}})
                       for w in _words(block["text"])]  # fmt: skip
        else:
            events.append(event("content_block_start", {"index": i, "content_block": {**block, "input": {}}}))
            partial = json.dumps(block["input"], separators=(",", ":"))
            events.append(
                event(
                    "content_block_delta",
                    {"index": i, "delta": {"type": "input_json_delta", "partial_json": partial}},
                )
            )
        events.append(event("content_block_stop", {"index": i}))
    events.append(event("message_delta", {"delta": {"stop_reason": stop, "stop_sequence": None},
                                          "usage": {"output_tokens": out_tokens}}))  # fmt: skip
    events.append(event("message_stop", {}))
    return Answer(
        200, {"content-type": SSE}, events=[(0.0, e) for e in events], usage=(in_tokens, out_tokens)
    )


def error_answer(status: int, message: str, kind: str, anthropic: bool) -> Answer:
    if anthropic:
        return json_answer(status, {"type": "error", "error": {"type": kind, "message": message}})
    return json_answer(status, {"error": {"message": message, "type": kind, "code": kind}})


class LocalModel:
    """Answers `local` requests for one project (its ai-rules.yaml unless `ploy login` named a file)."""

    def __init__(self, project_root: Path) -> None:
        self.project_root = project_root
        self._files: dict[Path, RulesFile] = {}

    def rules_path(self, configured: str | None) -> Path | None:
        if configured:
            return Path(configured).expanduser().resolve()
        default = self.project_root / RULES_NAME
        return default if default.is_file() else None

    def rules(self, configured: str | None) -> tuple[Path | None, list[Rule] | None]:
        path = self.rules_path(configured)
        if path is None:
            return None, None
        file = self._files.get(path)
        if file is None:
            file = self._files[path] = RulesFile(path)
        return path, file.rules()

    def answer(
        self, method: str, subpath: str, body: Any, model: str | None, configured: str | None, anthropic: bool
    ) -> Answer:
        """One call; `model` is the name after `local/`. Raises RulesError for a broken rules file."""
        if subpath.startswith("/models"):
            if anthropic:
                data = [
                    {
                        "type": "model",
                        "id": "local/scripted",
                        "display_name": "ploy local model",
                        "created_at": "1970-01-01T00:00:00Z",
                    }
                ]
                return json_answer(
                    200,
                    {
                        "data": data,
                        "has_more": False,
                        "first_id": "local/scripted",
                        "last_id": "local/scripted",
                    },
                )
            return json_answer(
                200,
                {
                    "object": "list",
                    "data": [{"id": "local/scripted", "object": "model", "created": 0, "owned_by": "ploy"}],
                },
            )
        if method != "POST" or not isinstance(body, dict):
            return error_answer(
                400,
                "the local model takes POST requests with a JSON body",
                "invalid_request_error",
                anthropic,
            )
        if subpath.startswith("/messages/count_tokens"):
            return json_answer(
                200, {"input_tokens": _tokens(json.dumps([body.get("system"), body.get("messages")]))}
            )
        wire_anthropic = subpath.startswith("/messages")
        conv = read_conversation(body.get("messages"))
        name = model or "scripted"
        path, rules = self.rules(configured)
        if rules is None:
            text: str | None = f"echo: {conv.last_user}"
            tools: list[ToolUse] = []
        else:
            try:
                rule, groups = choose(rules, conv, name)
            except NoRule:
                msg = f"the local model has no rule in {path} for the last user message {conv.last_user[:200]!r} (model {name!r})"
                return error_answer(400, msg, "invalid_request_error", anthropic)
            text, tools = reply_for(rule, groups, conv)
        ident = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
        if wire_anthropic:
            return anthropic_messages(body, name, ident, text, tools)
        return openai_chat(body, name, ident, text, tools)
