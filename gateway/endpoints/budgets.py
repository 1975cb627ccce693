"""GET /v1/budgets: cap, spent, reserved, remaining and reset time of the budgets a key may see.

An agent key sees the budgets that apply to its own calls (its team's, its key's, its agent's, and
for a key that may make up agent names, its agents' together: `key_agents`);
a team admin its team's, every key's of the team and every agent's the config names (each key's pinned
agent, the literal names it lists, or for a key that lists none its own name); an admin every team's.
Agent and task budgets exist per agent and per task id: ask for another with `?agent=` or `?task=`
(and `team=` for admins); the call's own `X-Agent-Id` and `X-Task-Id` headers count as asking, as they
do on a chat call.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.agent_names import is_pattern
from gateway.auth import KeyConfig, Role
from gateway.endpoints.intake import identify, runtime_of
from gateway.errors import InvalidRequest, PermissionDenied, ServiceUnavailable
from gateway.runtime import Runtime
from policies.budgets import Budget, call_budgets
from policies.state import StoreUnavailable

PARAMETERS = {"team", "agent", "task"}


SETTLED_WAIT_S = 1.0


async def budgets(request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    ctx = identify(request, runtime)
    params = request.query_params
    unknown = sorted(set(params) - PARAMETERS)
    if unknown:
        raise InvalidRequest(f"Unknown parameter '{unknown[0]}'; use team, agent, task.", param=unknown[0])
    principal = ctx.principal
    team = params.get("team") or principal.team
    if principal.role is not Role.ADMIN and team != principal.team:
        raise PermissionDenied("This key may not see another team's budgets.", param="team")
    agent = params.get("agent")
    if principal.role is Role.AGENT and agent is not None and agent != ctx.agent:
        raise PermissionDenied("This key may not see another agent's budgets.", param="agent")
    teams = list(runtime.config.teams) if principal.role is Role.ADMIN and "team" not in params else [team]
    await runtime.gate.policies.settled(SETTLED_WAIT_S)  # the caller's own last call is counted
    task = params.get("task") or ctx.task
    found = visible(runtime, teams, principal.role, principal.key_name, agent or ctx.agent, task, every_agent=not agent)
    try:
        statuses = [await runtime.services.policies.budgets.status(budget) for budget in found]
    except StoreUnavailable as exc:
        raise ServiceUnavailable("The state store is unreachable; budgets cannot be read now.") from exc
    return JSONResponse({"object": "list", "data": [status.as_dict() for status in statuses]})


def visible(
    runtime: Runtime,
    teams: list[str],
    role: Role,
    key_name: str,
    agent: str,
    task: str | None,
    *,
    every_agent: bool = False,
) -> list[Budget]:
    """Every budget of `teams` the role may see, once each, in config order; with `every_agent`, a team
    admin's or an admin's list has every agent the config names too."""
    config = runtime.config
    seen: dict[tuple[object, str], Budget] = {}
    thresholds = tuple(config.budget_alerts.thresholds) if config.budget_alerts else ()
    for team in teams:
        keys: list[KeyConfig | None] = [
            k for k in config.keys if k.team == team and (role is not Role.AGENT or k.name == key_name)
        ] or [None]
        for key in keys:
            agents = [agent]
            if every_agent and role is not Role.AGENT and key is not None:
                agents += _named_agents(key)
            for name in agents:
                for budget in call_budgets(
                    team=team,
                    team_policies=config.teams.get(team),
                    key=key.name if key else None,
                    key_policies=key,
                    agent=name,
                    task=task,
                    default_thresholds=thresholds,
                    pool_agents=key is not None and key.open_agent_names,
                ):
                    seen.setdefault((budget.scope, budget.period), budget)
    return list(seen.values())


def _named_agents(key: KeyConfig) -> list[str]:
    """The agents the config names for a key: its pinned agent, the literal names it lists, or, when it
    lists none, its own name (what its calls without X-Agent-Id are attributed to)."""
    if key.agent is not None:
        return [key.agent]
    literal = [name for name in key.agents or () if not is_pattern(name)]
    return literal if key.agents is not None else [key.name]
