"""Proxy overhead benchmark: agentgw against a bare pass-through proxy and the LiteLLM proxy.

What it measures, in one run, with `wrk` sending the same small non-streaming chat request
(`bench/post.lua`) to each target:

  direct      the static upstream itself (bench/static_upstream.py, raw asyncio on uvloop):
              the provider stand-in, measured to show it is never the bottleneck
  bare        bench/bare_proxy.py: starlette on uvicorn (uvloop + httptools), one process,
              forwarding through one shared aiohttp session. The baseline agentgw is held to.
  agentgw:X   `agentgw serve` with `server.upstream_client: X`, once per --clients value
  litellm     the LiteLLM proxy from PyPI, one uvicorn worker, in its own virtualenv
              (bench/.venv-litellm, created on first use; gitignored)

Each target is measured at concurrency 1 (`wrk -t1 -c1`) and 32 (`wrk -t2 -c32`), each after a
2 s warm-up run that is discarded. It reports p50, p99 and requests/s, the latency agentgw adds
over calling the upstream directly at c=1, its c=32 throughput as a fraction of the bare proxy,
agentgw vs LiteLLM throughput at c=32, and which upstream client was fastest. Any run with
non-2xx responses or socket errors is flagged. Results also go to bench/results/proxy-<ts>.json.
These are measurements to read, never assertions.

CPU pinning (on by default; --no-pin turns it off): the process under test (the bare proxy,
agentgw, LiteLLM) runs on CPU 0; wrk and the static upstream share CPU 1. On a 2-core machine
this keeps the load generator and the stand-in from stealing the proxy's core. For the `direct`
target the upstream shares CPU 1 with wrk, so its numbers are a lower bound on its capacity.

Run:
    python bench/proxy_bench.py                       # everything, 10 s per measurement
    python bench/proxy_bench.py --skip-litellm --duration 3
    python bench/proxy_bench.py --clients aiohttp,httpx
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
LITELLM_VENV = BENCH_DIR / ".venv-litellm"
LUA_SCRIPT = BENCH_DIR / "post.lua"
CHAT_PATH = "/v1/chat/completions"
REQUEST_BODY = {
    "model": "bench-model",
    "messages": [{"role": "user", "content": "Say hello in one short sentence."}],
    "max_tokens": 32,
}
GATEWAY_KEY = "agentgw-bench-key-0001"
LITELLM_MASTER_KEY = "sk-bench-litellm-master-0001"
PROVIDER_KEY = "sk-bench-not-secret"
ALL_CLIENTS = ("httptools", "aiohttp", "httpx", "httpx-aiohttp")
CONCURRENCIES = {1: (1, 1), 32: (2, 32)}  # concurrency -> (wrk threads, wrk connections)
WARMUP_SECONDS = 2
SUT_CPU = "0"  # the process under test
LOAD_CPU = "1"  # wrk and the static upstream

# docs/contract.md "Numbers it must reach", shown next to the results for reading (not asserted).
TARGET_ADDED_P50_MS = 1.0
TARGET_ADDED_P99_MS = 3.0
TARGET_VS_BARE = 0.5
TARGET_VS_LITELLM = 20.0

# LiteLLM, made as cheap as a fair comparison allows: no database (no DATABASE_URL, so no
# Prisma, no spend logs written), spend and error logs off, message logging off, no callbacks,
# logs at ERROR, production mode (no .env loading), the bundled model cost map instead of
# fetching it from the internet at start, and its own usage telemetry disabled. Auth (the master
# key) stays on, as it does for agentgw.
LITELLM_ENV = {
    "LITELLM_LOG": "ERROR",
    "LITELLM_MODE": "PRODUCTION",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_TELEMETRY_DISABLED": "true",
}
LITELLM_STARTUP_TIMEOUT = 180.0
STARTUP_TIMEOUT = 30.0


class BenchError(RuntimeError):
    """A target could not be started or answered wrongly: the run stops, loudly."""


# --------------------------------------------------------------------------- processes


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Services:
    """Every process this run started, each in its own process group, stopped on exit."""

    def __init__(self, workdir: Path, pin: bool) -> None:
        self.workdir = workdir
        self.pin = pin
        self.running: list[Service] = []

    def start(self, name: str, argv: Sequence[str], cpu: str, env: dict[str, str] | None = None) -> Service:
        log_path = self.workdir / f"{name.replace(':', '-')}.log"
        command = [*(["taskset", "-c", cpu] if self.pin else []), *argv]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env={**base_env(), **(env or {})},
                start_new_session=True,  # own process group: Ctrl-C does not reach it, killpg does
            )
        service = Service(name, process, log_path)
        self.running.append(service)
        return service

    def stop(self, service: Service) -> None:
        terminate_group(service.process)
        if service in self.running:
            self.running.remove(service)
        report_log_problems(service)

    def stop_all(self) -> None:
        for service in reversed(list(self.running)):
            self.stop(service)


PROBLEM = re.compile(r"Traceback|\b(ERROR|CRITICAL|Exception)\b")


def report_log_problems(service: Service) -> None:
    """Say so when a target logged errors during the run (its log is in a temp dir that goes away)."""
    try:
        lines = service.log_path.read_text(errors="replace").splitlines()
    except OSError:
        return
    problems = [line for line in lines if PROBLEM.search(line)]
    if problems:
        print(f"  !! {service.name} logged {len(problems)} error line(s); the first and last:", flush=True)
        for line in dict.fromkeys([problems[0], problems[-1]]):
            print(f"     {line[:300]}", flush=True)


def terminate_group(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it has not gone within `grace` seconds."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # stragglers (workers, children) in the group
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)


def base_env() -> dict[str, str]:
    """The environment for every child: no proxies for loopback, no stray database URL."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env.pop("DATABASE_URL", None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- HTTP checks


def request_once(method: str, url: str, body: bytes | None = None, key: str | None = None) -> tuple[int, bytes]:
    """One request over a fresh connection (no proxies, no redirects): status and body."""
    parts = urllib.parse.urlsplit(url)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        connection.request(method, parts.path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_ready(service: Service, url: str, timeout: float) -> None:
    """Poll `url` until it answers 200; fail at once if the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise BenchError(
                f"{service.name} exited with {service.process.returncode} before it was ready:\n{service.log_tail()}"
            )
        with contextlib.suppress(OSError):
            status, _ = request_once("GET", url)
            if status == 200:
                return
        time.sleep(0.2)
    raise BenchError(f"{service.name} not ready at {url} after {timeout:.0f} s:\n{service.log_tail()}")


def verify_chat(name: str, base_url: str, key: str) -> None:
    """One real request must answer 200 with a chat completion before anything is measured."""
    status, body = request_once("POST", base_url + CHAT_PATH, json.dumps(REQUEST_BODY).encode(), key)
    try:
        choices = json.loads(body).get("choices")
    except (ValueError, AttributeError):
        choices = None
    if status != 200 or not choices:
        raise BenchError(f"{name}: the check request got {status}: {body[:500]!r}")


# --------------------------------------------------------------------------- wrk


@dataclass
class WrkResult:
    concurrency: int
    p50_ms: float
    p99_ms: float
    requests_per_s: float
    requests: int
    non_2xx: int
    socket_errors: int
    raw: str = field(repr=False)

    @property
    def ok(self) -> bool:
        return self.non_2xx == 0 and self.socket_errors == 0 and self.requests > 0


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def to_ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def parse_wrk(text: str, concurrency: int) -> WrkResult:
    def percentile(p: int) -> float:
        match = re.search(rf"^\s+{p}(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M)
        if not match:
            raise BenchError(f"wrk output has no {p}% latency:\n{text}")
        return to_ms(match.group(1), match.group(2))

    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    total = re.search(r"^\s+(\d+) requests in", text, re.M)
    if not rps or not total:
        raise BenchError(f"cannot parse wrk output:\n{text}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return WrkResult(
        concurrency=concurrency,
        p50_ms=percentile(50),
        p99_ms=percentile(99),
        requests_per_s=float(rps.group(1)),
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
        raw=text,
    )


def run_wrk(url: str, key: str, concurrency: int, seconds: float, pin: bool, script: Path = LUA_SCRIPT) -> WrkResult:
    threads, connections = CONCURRENCIES[concurrency]
    command = [
        *(["taskset", "-c", LOAD_CPU] if pin else []),
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    env = {**base_env(), "BENCH_KEY": key}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout, concurrency)


def measure(
    name: str,
    base_url: str,
    key: str,
    seconds: float,
    pin: bool,
    *,
    path: str = CHAT_PATH,
    script: Path = LUA_SCRIPT,
    warmup: float = WARMUP_SECONDS,
) -> list[WrkResult]:
    """wrk at each concurrency, after a warm-up run that is discarded: POSTs of `script`'s body to `path`."""
    results = []
    for concurrency in CONCURRENCIES:
        run_wrk(base_url + path, key, concurrency, warmup, pin, script)  # warm-up, discarded
        result = run_wrk(base_url + path, key, concurrency, seconds, pin, script)
        flag = "" if result.ok else f"  !! {result.non_2xx} non-2xx, {result.socket_errors} socket errors"
        print(
            f"  {name:<22} c={concurrency:<3} p50 {result.p50_ms:8.3f} ms  p99 {result.p99_ms:8.3f} ms  "
            f"{result.requests_per_s:10.0f} req/s{flag}",
            flush=True,
        )
        results.append(result)
    return results


# --------------------------------------------------------------------------- targets


def start_upstream(services: Services) -> tuple[Service, str]:
    port = free_port()
    argv = [sys.executable, str(BENCH_DIR / "static_upstream.py"), "--port", str(port)]
    service = services.start("upstream", argv, LOAD_CPU)
    base = f"http://127.0.0.1:{port}"
    wait_ready(service, base + "/healthz", STARTUP_TIMEOUT)
    verify_chat("upstream", base, GATEWAY_KEY)
    return service, base


def start_bare_proxy(services: Services, upstream: str) -> tuple[Service, str]:
    port = free_port()
    argv = [sys.executable, str(BENCH_DIR / "bare_proxy.py"), "--port", str(port), "--upstream", upstream]
    service = services.start("bare", argv, SUT_CPU)
    base = f"http://127.0.0.1:{port}"
    wait_ready(service, base + "/healthz", STARTUP_TIMEOUT)
    verify_chat("bare", base, GATEWAY_KEY)
    return service, base


def gateway_config(upstream: str, client: str) -> str:
    return f"""\
server: {{host: 127.0.0.1, port: 0, upstream_client: {client}}}
providers:
  upstream: {{type: openai, base_url: "{upstream}/v1", api_key: "{PROVIDER_KEY}"}}
models:
  bench-model: {{provider: upstream, upstream: gpt-4o-mini}}
teams: {{bench: {{}}}}
keys:
  - {{name: bench, key: "{GATEWAY_KEY}", team: bench, role: admin}}
"""


def agentgw_command() -> list[str]:
    found = shutil.which("agentgw") or str(Path(sys.executable).with_name("agentgw"))
    if not Path(found).exists():
        raise BenchError("the `agentgw` command is not installed: pip install -e .")
    return [found]


def start_agentgw(services: Services, upstream: str, client: str) -> tuple[Service, str]:
    config = services.workdir / f"agentgw-{client}.yaml"
    config.write_text(gateway_config(upstream, client))
    port = free_port()
    argv = [*agentgw_command(), "serve", "-c", str(config), "--port", str(port), "--log-level", "warning"]
    service = services.start(f"agentgw:{client}", argv, SUT_CPU)
    base = f"http://127.0.0.1:{port}"
    wait_ready(service, base + "/healthz", STARTUP_TIMEOUT)
    verify_chat(service.name, base, GATEWAY_KEY)
    return service, base


def litellm_config(upstream: str) -> str:
    return f"""\
model_list:
  - model_name: bench-model
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: "{upstream}/v1"
      api_key: "{PROVIDER_KEY}"
litellm_settings:
  set_verbose: false
  json_logs: false
  turn_off_message_logging: true
  callbacks: []
  success_callback: []
  failure_callback: []
general_settings:
  master_key: "{LITELLM_MASTER_KEY}"
  disable_spend_logs: true
  disable_error_logs: true
"""


def ensure_litellm_venv() -> Path:
    """bench/.venv-litellm with `litellm[proxy]`, created on first use and reused after."""
    executable = LITELLM_VENV / "bin" / "litellm"
    if executable.exists():
        return executable
    print(f"creating {LITELLM_VENV} and installing litellm[proxy] (first run only) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
    pip = str(LITELLM_VENV / "bin" / "pip")
    subprocess.run([pip, "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([pip, "install", "--quiet", "litellm[proxy]"], check=True)
    if not executable.exists():
        raise BenchError(f"litellm[proxy] installed but {executable} is missing")
    return executable


def litellm_version() -> str | None:
    python = LITELLM_VENV / "bin" / "python"
    if not python.exists():
        return None
    done = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or None


def start_litellm(services: Services, upstream: str) -> tuple[Service, str]:
    executable = ensure_litellm_venv()
    config = services.workdir / "litellm.yaml"
    config.write_text(litellm_config(upstream))
    port = free_port()
    argv = [str(executable), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--num_workers", "1"]
    service = services.start("litellm", argv, SUT_CPU, env=LITELLM_ENV)
    base = f"http://127.0.0.1:{port}"
    wait_ready(service, base + "/health/readiness", LITELLM_STARTUP_TIMEOUT)
    verify_chat("litellm", base, LITELLM_MASTER_KEY)
    return service, base


@contextlib.contextmanager
def running(services: Services, started: tuple[Service, str]) -> Iterator[str]:
    """Yield the target's base URL and stop it afterwards, so idle targets never share CPU 0."""
    service, base = started
    try:
        yield base
    finally:
        services.stop(service)


# --------------------------------------------------------------------------- report


Results = dict[str, dict[int, WrkResult]]


@dataclass
class Derived:
    """One target's numbers relative to the others."""

    added_p50_ms_c1: float
    added_p99_ms_c1: float
    rps_c32_vs_bare: float | None
    rps_c32_vs_litellm: float | None = None


@dataclass
class Summary:
    by_target: dict[str, Derived]
    best_client_by_c32_rps: str | None
    best_client_by_c1_p50: str | None
    upstream_headroom_c32: float | None


def ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def summarize(results: Results) -> Summary:
    direct, bare, litellm = results["direct"], results.get("bare"), results.get("litellm")
    by_target: dict[str, Derived] = {}
    for name, by_c in results.items():
        if name == "direct":
            continue
        by_target[name] = Derived(
            added_p50_ms_c1=by_c[1].p50_ms - direct[1].p50_ms,
            added_p99_ms_c1=by_c[1].p99_ms - direct[1].p99_ms,
            rps_c32_vs_bare=ratio(by_c[32].requests_per_s, bare[32].requests_per_s) if bare else None,
            rps_c32_vs_litellm=(
                ratio(by_c[32].requests_per_s, litellm[32].requests_per_s)
                if litellm and name.startswith("agentgw:")
                else None
            ),
        )
    gateways = {name.split(":", 1)[1]: r for name, r in results.items() if name.startswith("agentgw:")}
    proxied = [r[32].requests_per_s for name, r in results.items() if name != "direct"]
    return Summary(
        by_target=by_target,
        best_client_by_c32_rps=max(gateways, key=lambda c: gateways[c][32].requests_per_s, default=None),
        best_client_by_c1_p50=min(gateways, key=lambda c: gateways[c][1].p50_ms, default=None),
        upstream_headroom_c32=ratio(direct[32].requests_per_s, max(proxied)) if proxied else None,
    )


def fmt(value: float | None, spec: str) -> str:
    return "n/a".rjust(len(format(0.0, spec))) if value is None else format(value, spec)


def print_report(results: Results, summary: Summary) -> None:
    print()
    print(f"{'target':<22} {'c':>3} {'p50 ms':>9} {'p99 ms':>9} {'req/s':>10}  errors")
    for name, by_c in results.items():
        for concurrency, r in by_c.items():
            errors = "" if r.ok else f"!! {r.non_2xx} non-2xx, {r.socket_errors} socket"
            print(
                f"{name:<22} {concurrency:>3} {r.p50_ms:9.3f} {r.p99_ms:9.3f} {r.requests_per_s:10.0f}  "
                f"{errors}".rstrip()
            )
    print()
    print(
        f"{'vs direct / bare / litellm':<26} {'+p50 ms c=1':>12} {'+p99 ms c=1':>12} "
        f"{'c=32/bare':>10} {'c=32/litellm':>13}"
    )
    for name, d in summary.by_target.items():
        print(
            f"{name:<26} {d.added_p50_ms_c1:12.3f} {d.added_p99_ms_c1:12.3f} "
            f"{fmt(d.rps_c32_vs_bare, '10.2f')} {fmt(d.rps_c32_vs_litellm, '13.1f')}"
        )
    print(
        f"docs/contract.md targets for agentgw: +p50 <= {TARGET_ADDED_P50_MS} ms, +p99 <= {TARGET_ADDED_P99_MS} ms, "
        f"c=32/bare >= {TARGET_VS_BARE}, c=32/litellm >= {TARGET_VS_LITELLM} (read, not asserted)"
    )
    print()
    print(f"upstream client with the best c=32 throughput: {summary.best_client_by_c32_rps}")
    print(f"upstream client with the lowest c=1 p50:       {summary.best_client_by_c1_p50}")
    print(
        f"static upstream headroom: direct c=32 req/s = {fmt(summary.upstream_headroom_c32, '.1f')}x "
        "the fastest proxied target's"
    )
    failed = [f"{name} c={c}" for name, by_c in results.items() for c, r in by_c.items() if not r.ok]
    if failed:
        print(f"!! RUNS WITH ERRORS (their numbers are not trustworthy): {', '.join(failed)}")


def write_json(results: Results, summary: Summary, meta: dict[str, object]) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"proxy-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    payload = {
        "meta": meta,
        "results": {name: {str(c): asdict(r) for c, r in by_c.items()} for name, by_c in results.items()},
        "derived": asdict(summary),
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement (default 10)")
    parser.add_argument("--skip-litellm", action="store_true", help="do not set up, start or measure LiteLLM")
    parser.add_argument(
        "--clients",
        default=",".join(ALL_CLIENTS),
        help=f"agentgw upstream clients to measure, comma-separated (default {','.join(ALL_CLIENTS)})",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs with taskset")
    args = parser.parse_args(argv)
    args.clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    unknown = [c for c in args.clients if c not in ALL_CLIENTS]
    if unknown or not args.clients:
        parser.error(f"--clients: choose from {', '.join(ALL_CLIENTS)} (got {args.clients})")
    return args


def check_tools(pin: bool) -> None:
    needed = ["wrk", *(["taskset"] if pin else [])]
    missing = [tool for tool in needed if shutil.which(tool) is None]
    if missing:
        raise BenchError(f"missing tools: {', '.join(missing)}")
    if pin and (os.cpu_count() or 1) < 2:
        raise BenchError("pinning needs 2 CPUs; run with --no-pin")


def run(args: argparse.Namespace, services: Services) -> Results:
    results: Results = {}
    seconds, pin = args.duration, not args.no_pin

    def record(name: str, base: str, key: str) -> None:
        results[name] = {r.concurrency: r for r in measure(name, base, key, seconds, pin)}

    _, upstream = start_upstream(services)
    record("direct", upstream, GATEWAY_KEY)
    with running(services, start_bare_proxy(services, upstream)) as base:
        record("bare", base, GATEWAY_KEY)
    for client in args.clients:
        with running(services, start_agentgw(services, upstream, client)) as base:
            record(f"agentgw:{client}", base, GATEWAY_KEY)
    if not args.skip_litellm:
        print("  starting litellm (this can take a while) ...", flush=True)
        with running(services, start_litellm(services, upstream)) as base:
            record("litellm", base, LITELLM_MASTER_KEY)
    return results


def metadata(args: argparse.Namespace) -> dict[str, object]:
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_s": args.duration,
        "warmup_s": WARMUP_SECONDS,
        "pinned": not args.no_pin,
        "pinning": None if args.no_pin else {"under_test": SUT_CPU, "wrk_and_upstream": LOAD_CPU},
        "clients": args.clients,
        "litellm": None if args.skip_litellm else {"version": litellm_version(), "env": LITELLM_ENV},
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "request": REQUEST_BODY,
    }


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM ends the run like Ctrl-C does, so the finally below always stops the services.
    signal.signal(signal.SIGTERM, _interrupt)
    with tempfile.TemporaryDirectory(prefix="agentgw-bench-") as tmp:
        services = Services(Path(tmp), pin=not args.no_pin)
        try:
            check_tools(not args.no_pin)
            print(f"measuring {args.duration:g} s per run (after {WARMUP_SECONDS} s warm-up), c=1 and c=32")
            results = run(args, services)
        except BenchError as exc:
            print(f"\nFAILED: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("\ninterrupted", file=sys.stderr)
            return 130
        finally:
            services.stop_all()
    summary = summarize(results)
    print_report(results, summary)
    path = write_json(results, summary, metadata(args))
    print(f"\nresults written to {path.relative_to(BENCH_DIR.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
