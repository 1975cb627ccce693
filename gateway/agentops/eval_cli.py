"""`agentgw eval run`: eval cases replayed through a gateway, scored, held to gates; JUnit XML for CI.

    agentgw eval run cases.jsonl --model gpt-4o-mini --baseline gpt-4o --judge gpt-4o \\
        --gate 'pass_rate>=0.9' --gate 'regression<=0.05' --junit eval.xml

Through a running gateway (`--url`, its key from `--api-key` or `$AGENTGW_KEY`), or, without `--url`,
one started in this process from the config (`-c`, on a free loopback port, its ledger the config's).
The run's results are stored in that gateway's ledger (`POST /v1/evals/runs`) unless `--no-store`.
Exit status: 0 when every gate holds, 1 when one does not, 2 when the run could not be made.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from gateway.agentops import cases as case_files
from gateway.agentops import junit
from gateway.agentops.evals import METRICS, Gate, GateError, Run, Runner, Variant, apply_gates, new_run_id
from gateway.config_file import ConfigError, load_config

GATE_FAILED, CANNOT_RUN = 1, 2


class EvalError(Exception):
    """The run cannot be made; the message says why."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="eval_command", required=True)
    run = commands.add_parser("run", help="replay eval cases through the gateway, score them, apply gates")
    run.add_argument("cases", help="a JSONL file: the feedback export's cases, or {input, expected} lines")
    target = run.add_mutually_exclusive_group(required=True)
    target.add_argument("--model", help="the model to evaluate")
    target.add_argument("--route", help="the route to evaluate")
    run.add_argument("--baseline", help="a model or route to compare with (the regression gate needs one)")
    metrics = ", ".join(METRICS)
    run.add_argument("--gate", action="append", default=[], metavar="EXPR",
                     help=f"a condition the run must meet, e.g. 'pass_rate>=0.9' (metrics: {metrics})")  # fmt: skip
    run.add_argument("--judge", metavar="MODEL", help="the judge model for judge checks and exported cases")
    run.add_argument("--system", metavar="FILE", help="a system prompt that replaces every case's (a candidate prompt)")
    run.add_argument("--tools", metavar="FILE", help="a JSON list of tools that replaces every case's")
    run.add_argument("--agent", help="X-Agent-Id for the run's calls (default: the key's agent)")
    run.add_argument("--agent-version", help="X-Agent-Version for the candidate's calls (default: the fingerprint)")
    run.add_argument("--name", help="a name for the run, kept with its results")
    run.add_argument("--junit", metavar="PATH", help="write the results as JUnit XML")
    run.add_argument("--json", metavar="PATH", help="write the results as JSON")
    run.add_argument("--concurrency", type=int, default=4, help="calls at once (default 4)")
    run.add_argument("--no-store", action="store_true", help="do not keep the results in the gateway's ledger")
    run.add_argument("--url", help="a running gateway (default: start the config's in this process)")
    run.add_argument("--api-key", help="gateway key (default: $AGENTGW_KEY, else the config's first admin key)")
    run.add_argument("-c", "--config", default="config.yaml", help="the gateway's config (default: ./config.yaml)")


def run(args: argparse.Namespace) -> int:
    try:
        gates = [Gate.parse(text) for text in args.gate]
        if any(g.metric == "regression" for g in gates) and not args.baseline:
            raise EvalError("--gate regression... needs --baseline")
        system = Path(args.system).read_text() if args.system else None
        tools = case_files.tools_of(json.loads(Path(args.tools).read_text())) if args.tools else None
        cases = case_files.load(args.cases, judge_available=args.judge is not None, system=system, tools=tools)
        if not cases:
            raise EvalError(f"{args.cases} holds no cases")
        if args.concurrency < 1:
            raise EvalError("--concurrency is at least 1")
        result = asyncio.run(_run(args, cases, gates))
    except (GateError, case_files.CaseError, EvalError, OSError, json.JSONDecodeError, ConfigError) as exc:
        print(f"agentgw eval run: {exc}", file=sys.stderr)
        return CANNOT_RUN
    print(table(result))
    if args.junit:
        junit.write(result, args.junit)
    if args.json:
        Path(args.json).write_text(json.dumps(result.as_dict(), indent=2))
    return 0 if result.passed else GATE_FAILED


async def _run(args: argparse.Namespace, cases: list[case_files.Case], gates: list[Gate]) -> Run:
    key = args.api_key or os.environ.get("AGENTGW_KEY") or _config_key(args.config)
    if not key:
        raise EvalError("no gateway key: pass --api-key or set AGENTGW_KEY")
    async with (
        _gateway(args) as url,
        httpx.AsyncClient(
            base_url=url, headers={"authorization": f"Bearer {key}"}, timeout=httpx.Timeout(300, connect=10)
        ) as client,
    ):
        run_id = new_run_id()
        runner = Runner(client, run_id, judge_model=args.judge, agent=args.agent, concurrency=args.concurrency)
        model = args.model or args.route
        candidate = await runner.variant("candidate", model, cases, args.agent_version)
        baseline = await runner.variant("baseline", args.baseline, cases) if args.baseline else None
        if all(r.error is not None for r in candidate.results):
            raise EvalError(f"every call failed; the first: {candidate.results[0].error}")
        result = Run(run_id, args.name, candidate, baseline, apply_gates(gates, candidate, baseline))
        if not args.no_store:
            await _store(client, result, args.agent)
        return result


async def _store(client: httpx.AsyncClient, result: Run, agent: str | None) -> None:
    headers = {"x-agent-id": agent} if agent else {}
    response = await client.post("/v1/evals/runs", json=result.as_dict(), headers=headers)
    if response.status_code != 201:
        print(f"agentgw eval run: the results were not stored ({response.status_code}: {response.text[:200]})",
              file=sys.stderr)  # fmt: skip


@contextlib.asynccontextmanager
async def _gateway(args: argparse.Namespace) -> AsyncIterator[str]:
    """The gateway's URL: `--url`, or one served in this process from the config."""
    if args.url:
        yield args.url.rstrip("/")
        return
    from gateway.app import create_app
    from gateway.serving.server import GatewayServer, uvicorn_config

    config = load_config(args.config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(config)
    server = GatewayServer(uvicorn_config(app, config.server, host="127.0.0.1", port=port, loop="asyncio",
                                          log_level="warning"))  # fmt: skip
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            sock.close()
            raise EvalError(f"the gateway of {args.config} did not start")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def _config_key(path: str) -> str | None:
    from gateway.usage_cli import config_key

    return config_key(path) if Path(path).exists() else None


def table(result: Run) -> str:
    """The run for people: each variant's numbers, the cases that failed, the gates."""
    variants = [v for v in (result.candidate, result.baseline) if v is not None]
    lines = [f"eval run {result.run_id}" + (f" ({result.name})" if result.name else "")]
    header = [
        "",
        "model",
        "version",
        "cases",
        "passed",
        "pass rate",
        "score",
        "cost/case",
        "p50 ms",
        "p95 ms",
        "errors",
    ]
    rows = [header] + [_row(v) for v in variants]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        cells = [c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    failed = [r for r in result.candidate.results if not r.passed]
    if failed:
        lines.append(f"\nfailed ({len(failed)}):")
        for r in failed[:20]:
            why = r.error or "; ".join(
                f"{c.check}: {c.detail}" if c.detail else c.check for c in r.checks if not c.passed
            )
            lines.append(f"  {r.case_id}: {why[:160]}")
        if len(failed) > 20:
            lines.append(f"  ... and {len(failed) - 20} more (see --junit or --json)")
    if result.baseline is not None:
        lines.append(f"\nregression: {result.regression:+.4f} (baseline pass rate minus candidate's)")
        if result.regressed_cases:
            lines.append(f"  passed on the baseline, failed now: {', '.join(result.regressed_cases[:20])}")
    if result.gates:
        lines.append("\ngates:")
        for gate, value, ok in result.gates:
            shown = "not measured" if value is None else f"{value:g}"
            lines.append(f"  {'PASS' if ok else 'FAIL'}  {gate.text}  ({shown})")
    lines.append(f"\n{'passed' if result.passed else 'FAILED'}")
    return "\n".join(lines)


def _row(v: Variant) -> list[str]:
    metrics: dict[str, Any] = v.metrics()
    return [
        v.variant, v.model, v.agent_version or "-", str(v.cases), str(v.passed_cases), f"{v.pass_rate:.1%}",
        f"{v.mean_score:.3f}", f"${metrics['cost_per_case']:.6f}", f"{metrics['latency_p50_ms']:.0f}",
        f"{metrics['latency_p95_ms']:.0f}", str(v.errors),
    ]  # fmt: skip
