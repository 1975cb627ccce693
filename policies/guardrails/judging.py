"""Asking the webhook guardrails about whole texts, for requests, whole responses and the end of a
stream alike: every webhook at once, their verdicts and redactions gathered."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from policies.guardrails.messages import Slot
from policies.guardrails.redact import JsonState, merge, render
from policies.guardrails.verdicts import Action, Finding, Phase, Verdict

if TYPE_CHECKING:
    from policies.guardrails.guards import WebhookGuard


def apply_findings(slot: Slot, text: str, findings: list[Finding]) -> str:
    return render(text, 0, len(text), merge(findings), JsonState() if slot.json else None)


async def run_webhooks(
    webhooks: list[WebhookGuard], phase: Phase, slots: list[Slot], texts: list[str], verdicts: list[Verdict]
) -> str | None:
    """Ask every webhook at once about `texts`; apply their redactions to `texts` in place.
    Returns the name of the first (in order) webhook that blocks."""
    roles = [slot.role for slot in slots]
    answers = await asyncio.gather(*(w.client.judge(w.name, phase, texts, roles) for w in webhooks))
    blocked_by: str | None = None
    extra: dict[int, list[Finding]] = {}
    for webhook, answer in zip(webhooks, answers, strict=True):
        action: Action
        if answer.error:
            action = "block" if webhook.fail_closed else "flag"
            verdicts.append(Verdict(webhook.name, phase, action, ("webhook_error",), 1))
        elif answer.action == "block":
            action = "flag" if webhook.action == "flag" else "block"
            verdicts.append(Verdict(webhook.name, phase, action, ("webhook",), 1))
        elif answer.action == "redact":
            count = sum(len(f) for f in answer.findings)
            action = "flag" if webhook.action == "flag" else "redact"
            verdicts.append(Verdict(webhook.name, phase, action, answer.entities, count))
            if action == "redact":
                for i, found in enumerate(answer.findings):
                    extra.setdefault(i, []).extend(found)
            continue
        else:
            continue
        if action == "block" and blocked_by is None:
            blocked_by = webhook.name
    for i, findings in extra.items():
        if findings:
            texts[i] = apply_findings(slots[i], texts[i], findings)
    return blocked_by
