"""How the gateway names what its upstream servers offer, so that several servers fit in one list.

A tool or prompt `create_issue` of the server `github` is `github__create_issue` (server names hold
no `_`, so the first `__` ends the server's name); a resource `file:///srv/a.txt` of the server
`files` is `files+file:///srv/a.txt` (a valid URI: server names start with a letter and hold only
what a URI scheme may). The access rules name resources `files__file:///srv/a.txt`.
"""

from __future__ import annotations

SEPARATOR = "__"


def qualified(server: str, name: str) -> str:
    return f"{server}{SEPARATOR}{name}"


def split(qualified_name: str) -> tuple[str, str] | None:
    """(server, its own name) for a gateway name, None for a name that is not one."""
    server, sep, name = qualified_name.partition(SEPARATOR)
    if not sep or not server or not name:
        return None
    return server, name


def resource_uri(server: str, uri: str) -> str:
    return f"{server}+{uri}"


def split_uri(gateway_uri: str) -> tuple[str, str] | None:
    """(server, the server's own URI) for a gateway resource URI, None for one that is not."""
    server, sep, uri = gateway_uri.partition("+")
    if not sep or not server or not uri or SEPARATOR in server:
        return None
    return server, uri
