"""Gateway keys: digests only, 401s for every malformed or unknown credential."""

from __future__ import annotations

import pytest

from gateway.auth import KeyConfig, KeyStore, Role
from gateway.errors import AuthenticationFailed, PermissionDenied

KEY = "agentgw-test-key-123"


@pytest.fixture
def store() -> KeyStore:
    return KeyStore(
        [
            KeyConfig.model_validate(
                {"name": "crawler", "key": KEY, "team": "research", "agent": "crawler", "models": ["m1"]}
            )
        ]
    )


def test_valid_key(store: KeyStore) -> None:
    principal = store.authenticate(f"Bearer {KEY}")
    assert (principal.key_name, principal.team, principal.agent, principal.role) == (
        "crawler",
        "research",
        "crawler",
        Role.AGENT,
    )


def test_scheme_is_case_insensitive(store: KeyStore) -> None:
    assert store.authenticate(f"bearer {KEY}").key_name == "crawler"


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer ", f"Basic {KEY}", KEY, "Bearer wrong-key-xxxxx", f"Bearer {KEY}x"]
)
def test_bad_credentials_are_401(store: KeyStore, header: str | None) -> None:
    with pytest.raises(AuthenticationFailed) as info:
        store.authenticate(header)
    assert KEY not in info.value.message


def test_pre_hashed_key() -> None:
    import hashlib

    digest = hashlib.sha256(KEY.encode()).hexdigest().upper()
    store = KeyStore([KeyConfig.model_validate({"name": "k", "key_sha256": digest, "team": "t"})])
    assert store.authenticate(f"Bearer {KEY}").key_name == "k"


def test_model_permission(store: KeyStore) -> None:
    principal = store.authenticate(f"Bearer {KEY}")
    principal.check_model("m1")
    with pytest.raises(PermissionDenied):
        principal.check_model("m2")
