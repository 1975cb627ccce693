"""Which listening addresses reach beyond this machine, for the development-key rule."""

from __future__ import annotations

import pytest

from gateway.exposure import is_loopback


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_addresses(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "gateway.internal", ""])
def test_addresses_other_machines_can_reach(host: str) -> None:
    assert not is_loopback(host)
