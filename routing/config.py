"""Config models for the `models:` and `routes:` sections: the catalog the router works over."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Capabilities(_Strict):
    """What a model can be asked for; a request needing a missing capability skips the model."""

    tools: bool = True
    vision: bool = True
    json_schema: bool = True
    streaming: bool = True


class ModelConfig(_Strict):
    """One model as the gateway offers it, bound to one provider."""

    provider: str
    upstream: str | None = Field(default=None, description="The provider's name for it; defaults to the key.")
    kind: Literal["chat", "embeddings"] = "chat"
    input_per_mtok: Decimal | None = Field(default=None, ge=0, description="USD per million input tokens.")
    output_per_mtok: Decimal | None = Field(default=None, ge=0, description="USD per million output tokens.")
    cached_input_per_mtok: Decimal | None = Field(
        default=None, ge=0, description="Cache reads; defaults to the input price."
    )
    cache_write_per_mtok: Decimal | None = Field(
        default=None, ge=0, description="Cache writes (Anthropic); defaults to the input price."
    )
    quality: float = Field(default=0.5, ge=0, le=1)
    context_window: int | None = Field(default=None, gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    tokenizer: str | None = Field(default=None, description="tiktoken encoding name for estimates.")
    capabilities: Capabilities = Capabilities()


FallbackTrigger = Literal["429", "5xx", "timeout", "connect", "context_length"]
DEFAULT_TRIGGERS: tuple[FallbackTrigger, ...] = ("429", "5xx", "timeout", "connect")


class RouteConfig(_Strict):
    """A named route: clients send its name as `model` and the gateway picks the target."""

    strategy: Literal["fallback"] = "fallback"
    candidates: list[str] = Field(min_length=1)
    fallback_on: list[FallbackTrigger] = Field(default_factory=lambda: list(DEFAULT_TRIGGERS))

    @model_validator(mode="after")
    def _unique_candidates(self) -> RouteConfig:
        if len(set(self.candidates)) != len(self.candidates):
            raise ValueError("candidates must not repeat a model")
        return self
