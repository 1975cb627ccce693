"""Config models for the `providers:` section, a union tagged on `type`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeoutConfig(_Strict):
    """Seconds. `read` bounds the wait for each piece of the response, so long streams still work."""

    connect: float = Field(default=5.0, gt=0)
    read: float = Field(default=120.0, gt=0)
    total: float | None = Field(default=None, gt=0, description="Whole call, non-streaming only.")


class _HttpProvider(_Strict):
    base_url: HttpUrl
    api_key: SecretStr | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict, description="Extra headers sent upstream.")
    timeout: TimeoutConfig = TimeoutConfig()

    @field_validator("headers")
    @classmethod
    def _no_reserved_headers(cls, headers: dict[str, SecretStr]) -> dict[str, SecretStr]:
        reserved = {"host", "content-length", "content-type", "transfer-encoding", "connection"}
        clash = sorted(name for name in headers if name.lower() in reserved)
        if clash:
            raise ValueError(f"the gateway sets these headers itself: {', '.join(clash)}")
        return headers

    def secrets(self) -> list[str]:
        """Every secret value this provider holds, so error text can be scrubbed of them."""
        values = [v.get_secret_value() for v in self.headers.values()]
        if self.api_key is not None:
            values.append(self.api_key.get_secret_value())
        return [v for v in values if len(v) >= 4]


OpenAIApi = Literal["chat", "responses", "embeddings"]
OPENAI_APIS: tuple[OpenAIApi, ...] = ("chat", "responses", "embeddings")


class OpenAIProviderConfig(_HttpProvider):
    """OpenAI, or any server that speaks its API: vLLM, Ollama, llama.cpp, LM Studio, Together..."""

    type: Literal["openai"]
    base_url: HttpUrl = HttpUrl("https://api.openai.com/v1")
    organization: str | None = None
    apis: list[OpenAIApi] = Field(
        default_factory=lambda: list(OPENAI_APIS),
        min_length=1,
        description="The APIs this server speaks; others are translated to chat. A server without the "
        "Responses API (many OpenAI-compatible servers) is `[chat, embeddings]`.",
    )
    stream_usage: bool = Field(
        default=True,
        description="Ask for usage on every stream (stream_options.include_usage) and hide it from "
        "clients that did not ask; turn off for servers that reject stream_options.",
    )


class AnthropicProviderConfig(_HttpProvider):
    """Anthropic's Messages API: Messages calls pass through, every other API is translated to it."""

    type: Literal["anthropic"]
    base_url: HttpUrl = HttpUrl("https://api.anthropic.com")
    anthropic_version: str = "2023-06-01"
    default_max_tokens: int = Field(default=4096, gt=0, description="Anthropic requires max_tokens.")


class MockProviderConfig(_Strict):
    """The built-in mock: answers in-process, deterministically, with no network and no key.

    It exists so a new install answers at once; its replies say they come from the mock.
    """

    type: Literal["mock"]
    latency_ms: float = Field(default=0.0, ge=0, description="Added before each reply.")
    chunk_delay_ms: float = Field(default=0.0, ge=0, description="Between streamed chunks.")

    def secrets(self) -> list[str]:
        return []


ProviderConfig = Annotated[
    OpenAIProviderConfig | AnthropicProviderConfig | MockProviderConfig, Field(discriminator="type")
]
