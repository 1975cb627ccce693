"""What a key may see of recorded calls: an agent key its own, a team admin its team's, an admin all;
and of the feedback on them: an agent key only what it wrote itself."""

from __future__ import annotations

from gateway.auth import Principal, Role


def visible(principal: Principal) -> dict[str, str]:
    """The report dimensions (see `gateway.metering.report.DIMENSIONS`) pinned for this key."""
    if principal.role is Role.ADMIN:
        return {}
    pinned = {"team": principal.team}
    if principal.role is Role.AGENT:
        pinned["key"] = principal.key_name
        if principal.agent is not None:
            pinned["agent"] = principal.agent
    return pinned


def sql_filter(principal: Principal, table: str = "usage_events") -> tuple[str, list[str]]:
    """A SQL condition limiting `table`'s rows to what the key may see, and its parameters."""
    columns = {"team": "team", "key": "key_name", "agent": "agent"}
    pinned = visible(principal)
    if not pinned:
        return "1 = 1", []
    clauses = [f"{table}.{columns[name]} = ?" for name in pinned]
    return " AND ".join(clauses), list(pinned.values())


def feedback_filter(principal: Principal, table: str = "feedback") -> tuple[str, list[str]]:
    """A SQL condition limiting `table`'s feedback rows to what the key may read, beyond the calls it
    may see: feedback on a session or task reaches every call in it, so an agent key reads only the
    feedback its own key wrote, never a teammate's on a session they share."""
    if principal.role is Role.AGENT:
        return f"{table}.key_name = ?", [principal.key_name]
    return "1 = 1", []
