"""`agentgw report`: the report for people (`gateway.agentops.report`), from the ledger.

    agentgw report --since 7d                       # Markdown on stdout, the config's ledger
    agentgw report --since 30d --format html -o report.html --slo-error-rate 0.02 --slo-p95-ms 8000

Reads the ledger directly like `agentgw usage` without `--url` (`--ledger`, else the config's).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from gateway.agentops.report import ERROR_RATE_SLO, P95_MS_SLO, Slo, build, html_page, markdown
from gateway.errors import InvalidRequest, ServiceUnavailable
from gateway.metering.backend import LedgerUnavailable
from gateway.metering.config import LedgerConfig
from gateway.metering.ledger import open_ledger
from gateway.metering.report import parse_time
from gateway.usage_cli import UsageError, ledger_config, ledger_of


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", default="7d", help="start: a duration back from now (7d, 24h), a date or time")
    parser.add_argument("--until", help="end (default: now)")
    parser.add_argument("--format", choices=["markdown", "html"], default="markdown")
    parser.add_argument("-o", "--output", metavar="PATH", help="write the report here (default: stdout)")
    parser.add_argument("--slo-error-rate", type=float, default=ERROR_RATE_SLO, metavar="RATE",
                        help=f"an agent's error rate target (default {ERROR_RATE_SLO})")  # fmt: skip
    parser.add_argument("--slo-p95-ms", type=float, default=P95_MS_SLO, metavar="MS",
                        help=f"an agent's p95 latency target (default {P95_MS_SLO:g})")  # fmt: skip
    parser.add_argument("--ledger", help="a SQLite file (a path or sqlite:///<path>) or a postgresql:// URL "
                        "(default: the config's)")  # fmt: skip
    parser.add_argument("-c", "--config", default="config.yaml", help="config whose ledger to read")


def run(args: argparse.Namespace) -> int:
    now = time.time()
    try:
        start = parse_time(args.since, "--since", now)
        end = parse_time(args.until, "--until", now) if args.until else now
        if start >= end:
            raise UsageError("--since is not before --until")
        config = ledger_config(args.ledger) if args.ledger else ledger_of(args.config)
        if config.kind == "sqlite" and not Path(config.path).exists():
            raise UsageError(f"no ledger at {config.path}")
        text = asyncio.run(_render(config, start, end, Slo(args.slo_error_rate, args.slo_p95_ms), args.format))
    except InvalidRequest as exc:
        print(f"agentgw report: {exc.message.replace(chr(39), '')}", file=sys.stderr)
        return 1
    except UsageError as exc:
        print(f"agentgw report: {exc}", file=sys.stderr)
        return 1
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


async def _render(config: LedgerConfig, start: float, end: float, slo: Slo, fmt: str) -> str:
    ledger = open_ledger(config, spool=False)
    try:
        await ledger.start(require_database=True)
    except LedgerUnavailable as exc:
        raise UsageError(f"cannot read the ledger: {exc}") from None
    try:
        report = await build(ledger, start, end, slo)
    except ServiceUnavailable:
        raise UsageError(f"cannot read the ledger at {config.location}: {ledger.last_error}") from None
    finally:
        await ledger.close()
    return html_page(report) if fmt == "html" else markdown(report)
