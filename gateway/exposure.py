"""The published development key must not be served beyond loopback.

`config.yaml` ships with `${AGENTGW_KEY:-agentgw-local-dev-key}` so a fresh install answers at
once; that key is printed in the README, so anyone who can reach the gateway knows it. Serving it
on an address other machines can reach is refused unless `server.allow_dev_key_on_network` says
the operator means it. Keys are compared by digest, the only form the config keeps.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from gateway.auth import KeyConfig, digest

DEV_KEY = "agentgw-local-dev-key"  # published: the shipped config's default, never a secret
_DEV_KEY_SHA256 = digest(DEV_KEY).hex()
OVERRIDE = "server.allow_dev_key_on_network: true"


def is_loopback(host: str) -> bool:
    """Whether listening on `host` reaches this machine only. A host name other than
    `localhost` counts as reachable: what it resolves to can change."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def dev_key_problems(keys: Sequence[KeyConfig], host: str, source: str) -> list[str]:
    """One line per key that is the development key while `host` (named by `source`, such as
    `server.host` or `--host`) reaches beyond loopback; empty when serving is safe."""
    if is_loopback(host):
        return []
    return [
        f"keys.{i}: '{key.name}' is the published development key ({DEV_KEY}) and {source} {host} "
        f"serves it beyond this machine: set AGENTGW_KEY to a key of your own (at least 12 characters), "
        f"listen on 127.0.0.1, or set {OVERRIDE} to accept the risk"
        for i, key in enumerate(keys)
        if key.key_sha256 == _DEV_KEY_SHA256
    ]
