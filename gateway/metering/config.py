"""Config for the `ledger:` section."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from policies.state.urls import redact_url

SQLITE_PREFIX = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
TlsMode = Literal["disable", "prefer", "require", "verify-ca", "verify-full"]


class LedgerConfig(BaseModel):
    """Where usage events go. `ledger: sqlite:///./agentgw.db` is short for `{path: ./agentgw.db}` (the
    embedded default), `ledger: postgresql://user:pass@host:5432/db` for `{url: ...}` (one ledger for a
    fleet of replicas), `ledger: false` turns the ledger off (no usage report then)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    path: str = "./agentgw.db"
    url: str | None = Field(default=None, description="postgresql://user:pass@host:port/db; unset: SQLite at path.")
    batch_size: int = Field(default=500, ge=1, le=100_000)
    flush_interval_ms: int = Field(default=200, ge=1, le=60_000)
    retention_days: float | None = Field(default=None, gt=0, description="Older events are deleted; None keeps all.")
    # PostgreSQL only.
    pool_size: int = Field(default=4, ge=1, le=100, description="Connections for reports (the writer has its own).")
    statement_timeout_ms: int = Field(default=30_000, ge=100, description="A report query running longer fails.")
    connect_timeout_ms: int = Field(default=5_000, ge=100)
    tls: TlsMode | None = Field(default=None, description="libpq's sslmode; None: what the URL says (or prefer).")
    tls_root_cert: str | None = Field(default=None, description="CA bundle for verify-ca and verify-full.")
    # Both backends: the local spool that keeps events while the database cannot take them.
    write_timeout_ms: int = Field(
        default=10_000, ge=100, description="A batch write taking longer counts as a failure: its events are spooled."
    )
    spool_dir: str | None = Field(
        default=None,
        description="Where events wait on disk while the database is down (default: beside the "
        "SQLite file, or ./agentgw-spool). Each process takes a slot of its own under it.",
    )
    spool_max_mb: int = Field(default=1024, ge=1, description="Beyond this, new events are dropped (and counted).")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if data is False:
            return {"enabled": False}
        if isinstance(data, str):
            data = {"url": data}
        if isinstance(data, dict) and isinstance(data.get("url"), str):
            url = data["url"]
            if url.startswith(SQLITE_PREFIX):
                data = {**data, "path": url.removeprefix(SQLITE_PREFIX)}
                del data["url"]
            elif not url.startswith(POSTGRES_SCHEMES):
                raise ValueError(
                    f"the ledger is a SQLite file ({SQLITE_PREFIX}<path>) or a PostgreSQL database "
                    "(postgresql://user:password@host:5432/db)"
                )
            else:
                try:
                    urlsplit(url).port  # noqa: B018 - validates the port
                except ValueError as exc:
                    raise ValueError(f"bad PostgreSQL URL {redact_url(url)}: {exc}") from None
        return data

    @property
    def kind(self) -> Literal["sqlite", "postgresql"]:
        return "postgresql" if self.url else "sqlite"

    @property
    def location(self) -> str:
        """Where the ledger is, safe to log: the URL with its password masked, or the file's path."""
        return redact_url(self.url) if self.url else self.path

    @property
    def spool_path(self) -> Path:
        if self.spool_dir is not None:
            return Path(self.spool_dir)
        if self.kind == "sqlite":
            file = Path(self.path)
            return file.with_name(file.stem + "-spool")  # ./agentgw.db: ./agentgw-spool
        return Path("./agentgw-spool")

    def secrets(self) -> list[str]:
        """The database password, for scrubbing logs and error text."""
        if not self.url:
            return []
        password = urlsplit(self.url).password
        return [unquote(password), password] if password and len(password) >= 4 else []
