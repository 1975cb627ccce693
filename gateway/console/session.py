"""Console sessions: signed, expiring tokens in an HttpOnly cookie; CSRF tokens derived from them.

A token names the key it was signed in with (its name, never the key) and binds to that key's
digest through an HMAC, so a key that is rotated or removed ends its sessions at once. Tokens are
`v1.<payload>.<signature>`: the payload is base64url JSON `{k: key name, b: binding, i: issued,
e: expires, n: nonce}`, the signature HMAC-SHA256 over it with the console secret (configured, or
random per process). Nothing is stored server-side except the nonces of sessions signed out before
they expired. The CSRF token of a session is HMAC(secret, "csrf" + nonce): the page reads it from a
meta tag and sends it as `x-csrf-token` on every state-changing request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

COOKIE = "agentgw_console"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True, slots=True)
class Session:
    key_name: str
    binding: str
    issued: int
    expires: int
    nonce: str


class Sessions:
    """Issues and checks session tokens for one secret."""

    def __init__(self, secret: bytes | None, ttl_seconds: int, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._signed_out: dict[str, int] = {}  # nonce -> expiry, for sessions ended before they lapsed

    def issue(self, key_name: str, key_digest: bytes) -> tuple[str, Session]:
        now = int(self._clock())
        session = Session(key_name, self._bind(key_digest), now, now + self.ttl_seconds, secrets.token_urlsafe(16))
        payload = _b64(orjson.dumps({"k": key_name, "b": session.binding, "i": now, "e": session.expires,
                                     "n": session.nonce}))  # fmt: skip
        return f"v1.{payload}.{self._sign(payload)}", session

    def read(self, token: str | None) -> Session | None:
        """The session a token carries, or None when it is malformed, forged, expired or signed out."""
        if not token or len(token) > 1024:
            return None
        version, _, rest = token.partition(".")
        payload, _, signature = rest.partition(".")
        if version != "v1" or not payload or not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            return None
        try:
            data = orjson.loads(_unb64(payload))
            session = Session(str(data["k"]), str(data["b"]), int(data["i"]), int(data["e"]), str(data["n"]))
        except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
            return None
        if session.expires <= self._clock() or session.nonce in self._signed_out:
            return None
        return session

    def binds(self, session: Session, key_digest: bytes) -> bool:
        """Whether the session was signed in with the key that now has this digest."""
        return hmac.compare_digest(session.binding, self._bind(key_digest))

    def csrf_token(self, session: Session) -> str:
        return self._mac(b"csrf" + session.nonce.encode())

    def csrf_ok(self, session: Session, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented.encode(), self.csrf_token(session).encode())

    def sign_out(self, session: Session) -> None:
        now = self._clock()
        self._signed_out = {n: e for n, e in self._signed_out.items() if e > now}
        self._signed_out[session.nonce] = session.expires

    def _bind(self, key_digest: bytes) -> str:
        return self._mac(b"bind" + key_digest)[:32]

    def _sign(self, payload: str) -> str:
        return self._mac(b"token" + payload.encode())

    def _mac(self, message: bytes) -> str:
        return _b64(hmac.new(self._secret, message, hashlib.sha256).digest())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
