"""Config for the `ledger:` section."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

SQLITE_PREFIX = "sqlite:///"


class LedgerConfig(BaseModel):
    """Where usage events go. `ledger: sqlite:///./agentgw.db` is short for `{path: ./agentgw.db}`,
    `ledger: false` turns the ledger off (no usage report then)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    path: str = "./agentgw.db"
    batch_size: int = Field(default=500, ge=1, le=100_000)
    flush_interval_ms: int = Field(default=200, ge=1, le=60_000)
    retention_days: float | None = Field(default=None, gt=0, description="Older events are deleted; None keeps all.")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if data is False:
            return {"enabled": False}
        if isinstance(data, str):
            if not data.startswith(SQLITE_PREFIX):
                raise ValueError(f"the ledger is a SQLite file: write it as {SQLITE_PREFIX}<path>")
            return {"path": data.removeprefix(SQLITE_PREFIX)}
        return data
