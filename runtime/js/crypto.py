"""Host ops of 41_crypto.js: digests and HMAC for crypto.subtle, and os.urandom for its entropy pool."""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime.js.host import JsHost

ENTROPY_BYTES = 65536


def fresh_entropy() -> str:
    """What the pool is fed: os.urandom bytes as latin-1 (also its seed when a context starts)."""
    return os.urandom(ENTROPY_BYTES).decode("latin-1")


def digest(ctx: JsHost, op: list[Any]) -> None:
    _, op_id, alg, data = op
    ctx.resolve(op_id, hashlib.new(alg, data.encode("latin-1")).digest())


def hmac_sign(ctx: JsHost, op: list[Any]) -> None:
    _, op_id, alg, key, data = op
    ctx.resolve(op_id, hmac.new(key.encode("latin-1"), data.encode("latin-1"), alg).digest())


def entropy(ctx: JsHost, op: list[Any]) -> None:
    """The pool ran low."""
    ctx.call_js(ctx.js_feed_entropy, fresh_entropy())


HOST_OPS = {"digest": digest, "hmac": hmac_sign, "entropy": entropy}
