"""Console session tokens: signed, expiring, bound to the key, ended by signing out; CSRF tokens."""

from __future__ import annotations

from gateway.auth import digest
from gateway.console.session import Sessions


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_names_its_key_and_never_holds_it() -> None:
    sessions = Sessions(b"s" * 32, 3600)
    token, session = sessions.issue("crawler-key", digest("the-secret-key-123"))
    assert "the-secret-key-123" not in token and digest("the-secret-key-123").hex() not in token
    read = sessions.read(token)
    assert read == session and read.key_name == "crawler-key"
    assert sessions.binds(read, digest("the-secret-key-123"))
    assert not sessions.binds(read, digest("a-rotated-key-456"))


def test_forged_altered_or_foreign_tokens_are_refused() -> None:
    sessions = Sessions(b"s" * 32, 3600)
    token, _ = sessions.issue("crawler-key", digest("the-secret-key-123"))
    version, payload, signature = token.split(".")
    forged_payload = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")
    for bad in (f"{version}.{forged_payload}.{signature}", f"{version}.{payload}.{signature[:-1]}x", "v1..",
                "", "garbage", token + "é", "v2." + payload + "." + signature):  # fmt: skip
        assert sessions.read(bad) is None, bad
    assert Sessions(b"t" * 32, 3600).read(token) is None  # another process's random secret


def test_tokens_expire_and_signing_out_ends_them() -> None:
    clock = Clock()
    sessions = Sessions(b"s" * 32, 60, clock)
    token, session = sessions.issue("admin", digest("k" * 12))
    clock.now += 59
    assert sessions.read(token) is not None
    clock.now += 2
    assert sessions.read(token) is None
    token, session = sessions.issue("admin", digest("k" * 12))
    sessions.sign_out(session)
    assert sessions.read(token) is None


def test_csrf_tokens_belong_to_one_session() -> None:
    sessions = Sessions(b"s" * 32, 3600)
    _, one = sessions.issue("admin", digest("k" * 12))
    _, two = sessions.issue("admin", digest("k" * 12))
    assert sessions.csrf_ok(one, sessions.csrf_token(one))
    assert not sessions.csrf_ok(one, sessions.csrf_token(two))
    assert not sessions.csrf_ok(one, None) and not sessions.csrf_ok(one, "")
