"""The gateway's side of guardrails: one GuardrailSet per team and key, the HTTP transport for
webhook guardrails, and verdicts in the forms spans, the ledger and metrics take."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from gateway.auth import Principal
from gateway.config import Config
from gateway.errors import GuardrailBlocked
from gateway.upstream import Timeouts, UpstreamClient
from policies.guardrails import GuardrailSet, Verdict

WEBHOOK_RESPONSE_LIMIT = 256 * 1024


class Guards:
    """The guardrail sets of one config, built on first use for each distinct set of names."""

    def __init__(self, config: Config, client: UpstreamClient) -> None:
        self._config = config
        self._client = client
        self._sets: dict[tuple[str, ...], GuardrailSet | None] = {}
        self._identities: dict[tuple[str, ...], tuple[tuple[str, ...], str]] = {}
        for key in config.keys:  # built now, so a guardrail that cannot be built fails at start-up
            self.for_names(key.team, tuple(key.guardrails))

    def for_principal(self, principal: Principal) -> GuardrailSet | None:
        """The team's guardrails plus the key's; None when there are none."""
        return self.for_names(principal.team, principal.guardrails)

    def identity(self, principal: Principal) -> tuple[tuple[str, ...], str]:
        """The guardrails in force for the principal, as part of a workflow version: their names, and a
        digest of their names and settings (a changed threshold is a changed workflow)."""
        names = self._names(principal.team, principal.guardrails)
        found = self._identities.get(names)
        if found is None:
            configs = [[name, self._config.guardrails[name].model_dump(mode="json")] for name in dict.fromkeys(names)]
            digest = hashlib.blake2b(orjson.dumps(configs, option=orjson.OPT_SORT_KEYS), digest_size=8).hexdigest()
            found = self._identities[names] = (tuple(dict.fromkeys(names)), digest)
        return found

    def _names(self, team_name: str, key_guardrails: tuple[str, ...]) -> tuple[str, ...]:
        team = self._config.teams.get(team_name)
        return (*(team.guardrails if team is not None else ()), *key_guardrails)

    def for_names(self, team_name: str, key_guardrails: tuple[str, ...]) -> GuardrailSet | None:
        names = self._names(team_name, key_guardrails)
        if names not in self._sets:
            self._sets[names] = (
                GuardrailSet.from_config(self._config.guardrails, names, post_json=self.post_json) if names else None
            )
        return self._sets[names]

    async def post_json(self, url: str, payload: dict[str, Any], headers: dict[str, str], timeout: float) -> Any:  # noqa: ASYNC109
        """A webhook guardrail's call: JSON in, JSON out; any failure raises for the guardrail to judge."""
        response = await self._client.send(
            "POST",
            url,
            headers={"content-type": "application/json", **headers},
            body=orjson.dumps(payload),
            timeouts=Timeouts(connect=timeout, read=timeout, total=timeout),
        )
        body = await response.read(WEBHOOK_RESPONSE_LIMIT)
        if response.status >= 300:
            raise RuntimeError(f"the guardrail service answered {response.status}")
        return orjson.loads(body)


def blocked(name: str, phase: str) -> GuardrailBlocked:
    where = "request" if phase == "input" else "response"
    return GuardrailBlocked(f"The {where} was blocked by the guardrail '{name}'.", param=name)


def records(verdicts: Sequence[Verdict]) -> list[Mapping[str, Any]]:
    return [v.as_dict() for v in verdicts]
