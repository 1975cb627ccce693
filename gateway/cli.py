"""The `agentgw` command: serve, check-config, usage, eval, report."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from gateway import preflight, usage_cli
from gateway.agentops import eval_cli, report_cli
from gateway.config_file import ConfigError, load_config

DEFAULT_CONFIG = "config.yaml"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agentgw", description="An OpenAI-compatible gateway for AI agents.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="config file (default: ./config.yaml)")
    serve.add_argument("--host", help="override server.host")
    serve.add_argument("--port", type=int, help="override server.port")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="override server.log_level")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes serving the one port (default 1); more than one needs a shared state store",
    )

    check = commands.add_parser("check-config", help="validate a config file without serving")
    check.add_argument("file", nargs="?", default=DEFAULT_CONFIG)

    usage = commands.add_parser("usage", help="print the usage (chargeback) report")
    usage_cli.add_arguments(usage)

    evals = commands.add_parser("eval", help="evaluation gates: replay eval cases through the gateway")
    eval_cli.add_arguments(evals)

    people = commands.add_parser("report", help="a report for people: cost, movers, SLOs, guardrails, versions")
    report_cli.add_arguments(people)

    args = parser.parse_args(argv)
    if args.command == "check-config":
        return _check_config(args.file)
    if args.command == "usage":
        return usage_cli.run(args)
    if args.command == "eval":
        return eval_cli.run(args)
    if args.command == "report":
        return report_cli.run(args)
    return _serve(args)


def _check_config(path: str) -> int:
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(
        f"{path}: ok ({len(config.providers)} providers, {len(config.models)} models, "
        f"{len(config.routes)} routes, {len(config.keys)} keys)"
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    from gateway.app import create_app
    from gateway.serving import serve, uvicorn_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    refusals = preflight.problems(config, host_override=args.host, workers=args.workers)
    if refusals:
        print("agentgw serve: cannot start:\n" + "\n".join(f"  - {p}" for p in refusals), file=sys.stderr)
        return 1
    server = config.server
    level = args.log_level or server.log_level
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host, port = args.host or server.host, args.port if args.port is not None else server.port
    if args.workers > 1:
        from gateway.serving.supervisor import supervise

        worker_args = ["-c", args.config, "--log-level", level]
        return supervise(host, port, args.workers, worker_args, server.graceful_shutdown_seconds)
    app = create_app(config, config_path=args.config)
    return serve(uvicorn_config(app, server, host=host, port=port, log_level=level))


if __name__ == "__main__":
    sys.exit(main())
