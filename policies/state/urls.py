"""The state store URL forms, in one place, and the Redis client each means.

- `memory`: in-process dicts.
- `redis://[user:pass@]host:port/db`, `rediss://...` (TLS): `redis.asyncio.Redis`.
- `redis+cluster://[user:pass@]h1:p1,h2:p2`: `redis.asyncio.RedisCluster`.
- `redis+sentinel://[user:pass@]h1:p1,h2:p2/service`: `Sentinel(...).master_for(service)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

StoreKind = Literal["memory", "redis", "cluster", "sentinel"]

_SCHEMES: dict[str, StoreKind] = {
    "redis": "redis",
    "rediss": "redis",
    "redis+cluster": "cluster",
    "redis+sentinel": "sentinel",
}
_FORMS = (
    "memory, redis://host:6379/0, rediss://..., redis+cluster://h1:p1,h2:p2 or redis+sentinel://h1:p1,h2:p2/service"
)


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """A parsed `state:` URL."""

    kind: StoreKind
    url: str
    hosts: tuple[tuple[str, int], ...] = ()
    username: str | None = None
    password: str | None = None
    service_name: str | None = None

    @property
    def redacted(self) -> str:
        """The URL with every password masked (in the user info, quoted or not, and in the query), for
        logs and messages."""
        return redact_url(self.url)


_QUERY_SECRET = re.compile(r"((?:^|[?&])(?:password|sentinel_password|pass|pwd)=)[^&]*", re.I)


def redact_url(url: str) -> str:
    """`url` with the password of its user info and any password-like query value replaced by ***."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, tail = rest.partition("/")
    base, qmark, query = (tail if slash else authority).partition("?")
    if "@" in authority:
        userinfo, _, hosts = authority.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        authority = f"{user}{':***' if colon else ''}@{hosts}"
    if slash:
        tail = base + (qmark + _QUERY_SECRET.sub(r"\1***", query) if qmark else "")
        return f"{scheme}://{authority}/{tail}"
    authority_base, qmark2, query2 = authority.partition("?")
    if qmark2:
        authority = authority_base + "?" + _QUERY_SECRET.sub(r"\1***", query2)
    return f"{scheme}://{authority}"


def parse_state_url(url: str) -> StoreLocation:
    """Parse a `state:` URL; raise ValueError naming the accepted forms."""
    if url in ("memory", "memory://"):
        return StoreLocation("memory", url)
    scheme, sep, rest = url.partition("://")
    kind = _SCHEMES.get(scheme.lower()) if sep else None
    if kind is None:
        raise ValueError(f"state: unsupported store URL; use {_FORMS}")
    if kind == "redis":
        parts = urlsplit(url)
        try:
            host, port = parts.hostname or "localhost", parts.port or 6379
        except ValueError as exc:
            raise ValueError(f"state: bad redis URL: {exc}") from None
        return StoreLocation(
            kind,
            url,
            ((host, port),),
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None,
        )
    netloc, _, path = rest.partition("/")
    userinfo, at, hostlist = netloc.rpartition("@")
    if not at:
        hostlist, userinfo = netloc, ""
    username, colon, password = userinfo.partition(":")
    hosts = tuple(_host_port(item, 26379 if kind == "sentinel" else 6379) for item in hostlist.split(",") if item)
    if not hosts:
        raise ValueError(f"state: {scheme} URL names no host; use {_FORMS}")
    service = path.strip("/") or None
    if kind == "sentinel" and (service is None or "/" in service):
        raise ValueError("state: a sentinel URL ends with the service name: redis+sentinel://h1:p1,h2:p2/service")
    if kind == "cluster" and service:
        raise ValueError("state: a cluster URL has no path (cluster mode has only db 0)")
    return StoreLocation(
        kind,
        url,
        hosts,
        unquote(username) or None,
        unquote(password) if colon and password else None,
        service if kind == "sentinel" else None,
    )


def _host_port(item: str, default_port: int) -> tuple[str, int]:
    if item.startswith("["):  # [ipv6]:port
        host, _, port = item[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "")
    if not host or (port and not port.isdigit()):
        raise ValueError(f"state: bad host:port {item!r}")
    return host, int(port) if port else default_port


def redis_client(location: StoreLocation, *, connect_timeout: float, timeout: float, max_connections: int) -> Any:
    """A redis.asyncio client for the location (Redis, RedisCluster or a Sentinel master). Nothing connects
    until the first command. One quick retry on a fresh connection covers pooled connections that a Redis
    restart closed; more would only make an outage slower to report. A command that timed out is not
    sent again: it may still run (a stalled Redis runs what queued up once it resumes), and a second copy
    would run too; the callers decide what to retry, with writes that are safe to repeat."""
    from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster, Sentinel
    from redis.asyncio.cluster import ClusterNode
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError

    options: dict[str, Any] = {
        "socket_connect_timeout": connect_timeout,
        "socket_timeout": timeout,
        "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    }
    if location.kind == "redis":
        # Blocking: at the connection cap, a command waits (up to `timeout`) for a free connection
        # instead of failing at once, as the default pool does.
        pool = BlockingConnectionPool.from_url(
            location.url, max_connections=max_connections, timeout=timeout, **options
        )
        return Redis.from_pool(pool)
    auth: dict[str, Any] = {"username": location.username, "password": location.password}
    if location.kind == "cluster":
        nodes = [ClusterNode(host, port) for host, port in location.hosts]
        return RedisCluster(startup_nodes=nodes, max_connections=max_connections, **auth, **options)
    if location.kind == "sentinel":
        assert location.service_name is not None
        sentinel = Sentinel(list(location.hosts), sentinel_kwargs={**auth, **options}, **auth, **options)
        return sentinel.master_for(location.service_name, max_connections=max_connections)
    raise ValueError(f"not a redis location: {location.kind}")
