"""One worker of `agentgw serve --workers N`: the gateway's own server (GatewayServer, EdgeProtocol) on
a listening socket the supervisor bound and handed down.

Run by `gateway.serving.supervisor`, never by hand:
    python -m gateway.serving.worker --fd 3 --worker 0 --run-dir DIR -c config.yaml [--log-level info]
It stops on SIGTERM or SIGINT (graceful, like a single `agentgw serve`), reloads its config on SIGHUP,
and stops by itself if the supervisor is gone.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from gateway.config_file import ConfigError, load_config
from gateway.serving.server import GatewayServer, make_room_for, uvicorn_config
from gateway.telemetry.worker_metrics import WorkerMetrics

PARENT_CHECK_SECONDS = 1.0
CONSOLE_SECRET_ENV = "AGENTGW_WORKERS_CONSOLE_SECRET"  # noqa: S105 - the variable's name


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agentgw-worker")
    parser.add_argument("--fd", type=int, required=True, help="the listening socket's file descriptor")
    parser.add_argument("--worker", type=int, required=True)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("-c", "--config", required=True)
    parser.add_argument("--log-level")
    args = parser.parse_args(argv)

    from gateway.app import create_app

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    level = args.log_level or config.server.log_level
    logging.basicConfig(
        level=level.upper(), format=f"%(asctime)s %(levelname)s %(name)s [worker {args.worker}]: %(message)s"
    )
    # Until the app has started and handles SIGHUP itself, a reload must not kill this worker (SIGHUP's
    # default); the config it is about to load is the newest anyway.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    sock = socket.socket(fileno=args.fd)
    console_secret = os.environ.pop(CONSOLE_SECRET_ENV, None)  # from the supervisor: one for all workers
    metrics = WorkerMetrics(Path(args.run_dir), args.worker)
    app = create_app(config, config_path=args.config, worker=metrics, console_secret=console_secret)
    edge = uvicorn_config(app, config.server, log_level=level)
    make_room_for(edge.limits.max_connections)
    _stop_with_parent(os.getppid())
    server = GatewayServer(edge)
    server.run(sockets=[sock])
    return 0 if server.started else 3


def _stop_with_parent(parent: int) -> None:
    """SIGTERM this worker (a graceful stop) if the supervisor dies without stopping it."""

    def watch() -> None:
        while not stopped.wait(PARENT_CHECK_SECONDS):
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    stopped = threading.Event()
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
