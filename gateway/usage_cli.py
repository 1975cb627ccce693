"""`agentgw usage`: the chargeback report for people, from a running gateway or a ledger file."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from gateway.metering import report
from gateway.metering.ledger import Ledger

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
        flag = "--key-name" if name == "key" else f"--{name}"
        parser.add_argument(flag, dest=f"only_{name}", help=f"only this {name}", metavar=name.upper())
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--url", help="a running gateway, e.g. http://127.0.0.1:8080 (needs --api-key)")
    source.add_argument("--ledger", help="a ledger file to read directly (default: the one config.yaml names)")
    parser.add_argument("--api-key", help="gateway key for --url (default: $AGENTGW_KEY)")
    parser.add_argument("-c", "--config", default="config.yaml", help="config whose ledger to read")


def run(args: argparse.Namespace) -> int:
    params = {"group_by": args.group_by, "from": args.since}
    if args.until:
        params["to"] = args.until
    params.update({name: getattr(args, f"only_{name}") for name in FILTERS if getattr(args, f"only_{name}")})
    try:
        data = _from_gateway(args, params) if args.url else _from_ledger(args, params)
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


def _from_gateway(args: argparse.Namespace, params: dict[str, str]) -> dict[str, Any]:
    import httpx

    key = args.api_key or os.environ.get("AGENTGW_KEY")
    if not key:
        raise UsageError("--url needs a gateway key: pass --api-key or set AGENTGW_KEY")
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
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        raise UsageError(f"{response.status_code}: {message}")
    result: dict[str, Any] = response.json()
    return result


def _from_ledger(args: argparse.Namespace, params: dict[str, str]) -> dict[str, Any]:
    from gateway.errors import InvalidRequest

    path = Path(args.ledger) if args.ledger else _ledger_of(args.config)
    if not path.exists():
        raise UsageError(f"no ledger at {path}")
    try:
        query = report.parse_query(params)
    except InvalidRequest as exc:
        raise UsageError(exc.message) from None

    async def read() -> dict[str, Any]:
        ledger = Ledger(path)
        await ledger.start()
        try:
            return (await report.run(ledger, query)).as_json()
        finally:
            await ledger.close()

    return asyncio.run(read())


def _ledger_of(config_path: str) -> Path:
    from gateway.config_file import ConfigError, load_config

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    if not config.ledger.enabled:
        raise UsageError(f"{config_path} turns the ledger off")
    return Path(config.ledger.path)


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
