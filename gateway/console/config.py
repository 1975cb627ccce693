"""The `console:` section of config.yaml: the web console at /ui and its sign-in sessions."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ConsoleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="Serve the console at /ui (and its /ui/api endpoints).")
    session_secret: str | None = Field(
        default=None,
        min_length=32,
        description="Signs session cookies (usually `${AGENTGW_CONSOLE_SECRET}`): give replicas behind one "
        "address the same secret. Unset: a random secret per process (sessions end when it restarts).",
    )
    session_minutes: int = Field(default=480, ge=1, le=7 * 24 * 60, description="How long a sign-in lasts.")
    secure_cookie: Literal["auto", "always"] = Field(
        default="auto",
        description="`auto`: the cookie is Secure when the request came over https (uvicorn reads "
        "X-Forwarded-Proto from a trusted proxy); `always`: Secure whatever the scheme.",
    )

    def secrets(self) -> list[str]:
        return [self.session_secret] if self.session_secret else []
