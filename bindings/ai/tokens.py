"""Gateway tokens: HMAC-signed, scoped to one project, with an expiry.

Format: `ploy_ai_<payload>.<signature>`, both base64url; payload is `{"p": project_key, "exp": unix_s,
"n": nonce}`. The signing secret is generated once into `config_home()/ai-secret` (mode 0600), so
tokens survive `ploy dev` restarts (a sandbox keeps working across them) and nothing else has to be
stored per token.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
import math
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from bindings.context import config_home

PREFIX = "ploy_ai_"


def secret_path() -> Path:
    return config_home() / "ai-secret"


def load_or_create_secret(path: Path | None = None) -> bytes:
    """Read the signing secret, creating it (0600, exclusively, so racing processes agree) if absent."""
    path = path or secret_path()
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Verdict(enum.Enum):
    OK = "ok"
    MISSING = "missing"
    INVALID = "invalid"  # malformed or bad signature
    EXPIRED = "expired"
    WRONG_PROJECT = "wrong_project"


@dataclass(frozen=True)
class TokenSigner:
    secret: bytes

    def mint(self, project_key: str, ttl_s: float, now: float | None = None) -> str:
        # rounded up: a token lives at least its TTL (current_token re-mints by that)
        exp = math.ceil((time.time() if now is None else now) + ttl_s)
        payload = json.dumps({"p": project_key, "exp": exp, "n": secrets.token_hex(6)}, separators=(",", ":"))
        body = _b64(payload.encode())
        return f"{PREFIX}{body}.{self._sign(body)}"

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self.secret, body.encode(), hashlib.sha256).digest()[:24])

    def verify(self, token: str | None, project_key: str, now: float | None = None) -> Verdict:
        if not token:
            return Verdict.MISSING
        if not token.startswith(PREFIX) or token.count(".") != 1:
            return Verdict.INVALID
        body, sig = token[len(PREFIX) :].split(".")
        if not hmac.compare_digest(sig, self._sign(body)):
            return Verdict.INVALID
        try:
            claims = json.loads(_unb64(body))
            exp, project = float(claims["exp"]), str(claims["p"])
        except (ValueError, KeyError, TypeError):
            return Verdict.INVALID
        if exp <= (time.time() if now is None else now):
            return Verdict.EXPIRED
        if project != project_key:
            return Verdict.WRONG_PROJECT
        return Verdict.OK
