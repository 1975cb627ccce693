"""`agentgw usage`: the chargeback report for people, from a running gateway or a ledger file."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from gateway.config_file import ConfigError, load_section, read_sections, resolve
from gateway.errors import InvalidRequest, ServiceUnavailable
from gateway.metering import report
from gateway.metering.backend import LedgerUnavailable
from gateway.metering.config import POSTGRES_SCHEMES, SQLITE_PREFIX, LedgerConfig
from gateway.metering.ledger import open_ledger

FILTERS = tuple(report.DIMENSIONS)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--group-by",
        default="team,agent",
        help="comma-separated: " + ", ".join([*report.DIMENSIONS, *report.BUCKETS]),
    )
    parser.add_argument("--since", default="30d", help="start: a duration back from now (7d, 24h), a date or time")
    parser.add_argument("--until", help="end (default: now)")
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
    for name in FILTERS:
        flag = "--key-name" if name == "key" else f"--{name.replace('_', '-')}"
        parser.add_argument(flag, dest=f"only_{name}", help=f"only this {name}", metavar=name.upper())
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--url", help="a running gateway, e.g. http://127.0.0.1:8080 (see --api-key)")
    source.add_argument(
        "--ledger",
        help="a ledger to read directly: a SQLite file (a path or sqlite:///<path>) or a postgresql:// URL "
        "(default: the config's)",
    )
    parser.add_argument(
        "--api-key",
        help="gateway key for --url (default: $AGENTGW_KEY, else the config's first admin key as the gateway "
        "resolves it, so ${AGENTGW_KEY:-agentgw-local-dev-key} gives the development key)",
    )
    parser.add_argument("-c", "--config", default="config.yaml", help="config whose ledger (or key) to use")


def run(args: argparse.Namespace) -> int:
    params = {"group_by": args.group_by, "from": args.since}
    if args.until:
        params["to"] = args.until
    params.update({name: getattr(args, f"only_{name}") for name in FILTERS if getattr(args, f"only_{name}")})
    try:
        data = _from_gateway(args, params) if args.url else _from_ledger(args, params)
    except InvalidRequest as exc:
        print(f"agentgw usage: {_in_flags(exc.message, exc.param)}", file=sys.stderr)
        return 1
    except UsageError as exc:
        print(f"agentgw usage: {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(data, indent=2))
    elif args.format == "csv":
        print(_csv(data), end="")
    else:
        print(_table(data))
    return 0


class UsageError(Exception):
    pass


# The report's parameters as this command's options, for error messages.
_FLAGS = {
    "from": "--since",
    "to": "--until",
    "group_by": "--group-by",
    "format": "--format",
    "key": "--key-name",
    "agent_version": "--agent-version",
}


def _in_flags(message: str, param: str | None) -> str:
    """A report error (worded for `GET /v1/usage`) in terms of this command's options."""
    for name, flag in _FLAGS.items():
        message = message.replace(f"'{name}'", flag)
    if message.startswith("group_by "):
        message = "--group-by " + message.removeprefix("group_by ")
    flag = _FLAGS.get(param or "", f"--{param}")
    return message if param is None or flag in message else f"{flag}: {message}"


def _from_gateway(args: argparse.Namespace, params: dict[str, str]) -> dict[str, Any]:
    import httpx

    key = args.api_key or os.environ.get("AGENTGW_KEY") or config_key(args.config)
    if not key:
        raise UsageError(
            f"--url needs a gateway key: pass --api-key or set AGENTGW_KEY ({args.config} has no key "
            "this command can use: it keeps key_sha256 digests only, or cannot be read)"
        )
    try:
        response = httpx.get(
            args.url.rstrip("/") + "/v1/usage",
            params=params,
            headers={"authorization": f"Bearer {key}"},
            timeout=30,
        )
    except httpx.HTTPError as exc:
        raise UsageError(f"cannot reach {args.url}: {exc}") from None
    if response.status_code != 200:
        try:
            error = response.json()["error"]
            message, param = str(error["message"]), error.get("param")
        except (ValueError, KeyError, TypeError):
            raise UsageError(f"{response.status_code}: {response.text[:200]}") from None
        if response.status_code == 400:
            raise InvalidRequest(message, param=param if isinstance(param, str) else None)
        raise UsageError(f"{response.status_code}: {message}")
    result: dict[str, Any] = response.json()
    return result


_ROLE_RANK = {"admin": 0, "team_admin": 1, "agent": 2}


def config_key(config_path: str) -> str | None:
    """The plain key of the config's most privileged key (admin, then team_admin, then agent; the
    first of a role), resolved as the gateway resolves it; None if the config cannot say."""
    try:
        keys = read_sections(config_path).get("keys")
    except ConfigError:
        return None
    if not isinstance(keys, list):
        return None
    plain = [entry for entry in keys if isinstance(entry, dict) and isinstance(entry.get("key"), str)]
    for entry in sorted(plain, key=lambda entry: _ROLE_RANK.get(entry.get("role", "agent"), len(_ROLE_RANK))):
        try:
            return resolve(entry["key"], "keys")
        except ConfigError:
            continue  # its variable is unset: not a key the gateway serves either
    return None


def _from_ledger(args: argparse.Namespace, params: dict[str, str]) -> dict[str, Any]:
    config = ledger_config(args.ledger) if args.ledger else ledger_of(args.config)
    if config.kind == "sqlite" and not Path(config.path).exists():
        raise UsageError(f"no ledger at {config.path}")
    query = report.parse_query(params)

    async def read() -> dict[str, Any]:
        ledger = open_ledger(config, spool=False)
        try:
            await ledger.start(require_database=True)
        except LedgerUnavailable as exc:
            raise UsageError(f"cannot read the ledger: {exc}") from None
        try:
            return (await report.run(ledger, query)).as_json()
        except ServiceUnavailable:
            raise UsageError(f"cannot read the ledger at {config.location}: {ledger.last_error}") from None
        finally:
            await ledger.close()

    return asyncio.run(read())


def ledger_config(value: str) -> LedgerConfig:
    """`--ledger`: a path, the config's own form sqlite:///<path>, or a postgresql:// URL."""
    try:
        if value.startswith((SQLITE_PREFIX, *POSTGRES_SCHEMES)):
            return LedgerConfig.model_validate(value)
        if "://" in value:
            raise UsageError(
                f"--ledger is a SQLite file (a path or {SQLITE_PREFIX}<path>) or a postgresql:// URL, "
                f"not {value.split('://')[0]}://"
            )
        return LedgerConfig(path=value)
    except ValueError as exc:
        raise UsageError(f"--ledger: {exc}") from None


def ledger_of(config_path: str) -> LedgerConfig:
    """The ledger the config names, from its `ledger:` section alone: the other sections' unset
    variables (a provider's API key) are no concern of a report."""
    try:
        ledger = load_section(config_path, "ledger", LedgerConfig)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    if not ledger.enabled:
        raise UsageError(f"{config_path} turns the ledger off")
    return ledger


def _columns(data: dict[str, Any]) -> list[str]:
    return [*data["group_by"], *report.METRICS]


def _csv(data: dict[str, Any]) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_columns(data))
    for row in data["data"]:
        writer.writerow([report.csv_cell(row.get(c)) for c in _columns(data)])
    return out.getvalue()


def _table(data: dict[str, Any]) -> str:
    columns = _columns(data)
    total_row = {**{c: "" for c in data["group_by"]}, **data["totals"]}
    if data["group_by"]:
        total_row[data["group_by"][0]] = "TOTAL"
    rows = [[_cell(row.get(c)) for c in columns] for row in [*data["data"], total_row]]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    numeric = [c in report.METRICS for c in columns]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(w) if num else cell.ljust(w) for cell, w, num in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    body = [line(r) for r in rows[:-1]]
    header = f"usage from {data['from']} to {data['to']}"
    return "\n".join([header, line(columns), rule, *body, rule, line(rows[-1])])


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)
