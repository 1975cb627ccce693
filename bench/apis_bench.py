"""Cost per API: Chat Completions, Responses and Messages through agentgw, against a bare pass-through.

In one run: each API passed through and translated, against a bare pass-through of the same API, and
chat through the checkout before the redesign (the call pipeline), side by side.

Every target is in front of the same static upstream (bench/static_upstream.py), which answers each
API at once from pre-encoded bytes. The targets, one process at a time on the core under test:

  direct    the static upstream itself, non-streamed only: shows it is never the bottleneck
  bare      bench/bare_proxy.py: starlette on uvicorn + one aiohttp session, forwarding each API's
            path as it is (streams relayed chunk by chunk). The baseline each API is held to.
  before    `agentgw serve` from a throwaway `git worktree` of --before (default 02b8448, the last
            commit before the call pipeline), installed in bench/.venv-before (gitignored; rebuilt
            when the commit changes): chat only, as that checkout has no other client API
  agentgw   `agentgw serve` from this checkout, with its default upstream client (httptools)
  agentgw-aiohttp   the same with `server.upstream_client: aiohttp`, chat only: the pipeline on the
            client the checkout before uses, so what the client changes and what the rest changes
            are read apart

The gateways get the same config (bench/proxy_bench.py's: keys, ledger, metrics; the checkout
before and agentgw-aiohttp on aiohttp, the client that checkout defaults to), with three providers
on the static upstream: `openai` (speaks chat and responses),
`chat-only` (an openai provider with `apis: [chat, embeddings]`; the checkout before has no `apis`,
so there it is a plain openai provider) and `anthropic`. Each API is measured

  pass-through  to a provider speaking it: chat and responses to `openai`, messages to `anthropic`
  translated    to one that does not: responses and messages over chat to `chat-only`, chat over
                messages to `anthropic`

and for each: wrk with a lua script per body at c=1 (p50, p99) and c=32 (req/s), each after a
warm-up run that is discarded, then a few hundred sequential streamed calls from a client pinned to
the load generator's core (time to the first event and to the end of the stream; the upstream
sends its first events at once and the rest 20 ms later). A check call before each is answered
with the upstream's text, and its id shows the route (the upstream's own id only when passed
through); every stream must end with its API's last event. It prints each row against the bare
pass-through of the same API, and chat before against after; JSON goes to bench/results/apis-*.json.
Measurements to read, never assertions.

Pinning (on by default; --no-pin turns it off) is proxy_bench.py's: the target on CPU 0, wrk, the
streaming client and the upstream on CPU 1.

Run:
    python bench/apis_bench.py                    # 10 s per measurement, 300 streams per row
    python bench/apis_bench.py --quick            # a short run, to check the script works
    python bench/apis_bench.py --before <git ref> --duration 5
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import overhead_bench as ob  # the sibling scripts, imported as modules
import proxy_bench as pb
import upstream_answers as answers

REPO = pb.BENCH_DIR.parent
BEFORE_REF = "02b8448"
BEFORE_VENV = pb.BENCH_DIR / ".venv-before"
PROMPT = pb.REQUEST_BODY["messages"][0]["content"]
QUICK = {"duration": 1.0, "warmup": 1.0, "stream_requests": 30}


@dataclass(frozen=True)
class ApiCall:
    """One client API: where its calls go, what they send, and how its answers are recognised."""

    path: str
    body: dict[str, Any]  # without the model
    own_id: str  # the id of the upstream's answer in this API: kept only when passed through
    end: bytes  # what the last `data:` line of its streams holds
    anthropic_headers: bool = False

    def request(self, model: str, stream: bool = False) -> dict[str, Any]:
        return {"model": model, **self.body, **({"stream": True} if stream else {})}

    def headers(self, key: str) -> dict[str, str]:
        if self.anthropic_headers:  # as the anthropic SDK sends them
            return {"x-api-key": key, "anthropic-version": "2023-06-01"}
        return {"authorization": f"Bearer {key}"}


APIS = {
    "chat": ApiCall(  # proxy_bench's request (bench/post.lua)
        path=pb.CHAT_PATH,
        body={k: v for k, v in pb.REQUEST_BODY.items() if k != "model"},
        own_id=answers.CHAT_COMPLETION["id"],
        end=b"[DONE]",
    ),
    "responses": ApiCall(
        path="/v1/responses",
        body={"input": PROMPT, "max_output_tokens": 32},
        own_id=answers.RESPONSE["id"],
        end=b"response.completed",
    ),
    "messages": ApiCall(
        path="/v1/messages",
        body={"max_tokens": 32, "messages": [{"role": "user", "content": PROMPT}]},
        own_id=answers.MESSAGE["id"],
        end=b"message_stop",
        anthropic_headers=True,
    ),
}


@dataclass(frozen=True)
class Route:
    """How one API's calls reach the upstream: the gateway's model name picks the provider."""

    api: str
    route: str  # pass-through | translated
    model: str
    via: str


ROUTES = [
    Route("chat", "pass-through", "bench-model", "openai provider"),
    Route("chat", "translated", "bench-claude", "over messages, anthropic provider"),
    Route("responses", "pass-through", "bench-model", "openai provider"),
    Route("responses", "translated", "bench-chat-only", "over chat, chat-only openai provider"),
    Route("messages", "pass-through", "bench-claude", "anthropic provider"),
    Route("messages", "translated", "bench-chat-only", "over chat, chat-only openai provider"),
]
UNROUTED = {api: Route(api, "", "bench-model", "") for api in APIS}  # direct and bare forward as they are


@dataclass
class Row:
    target: str  # direct | bare | before | agentgw | agentgw-aiohttp
    route: Route
    c1: pb.WrkResult
    c32: pb.WrkResult
    stream: ob.StreamResult | None = None

    @property
    def label(self) -> str:
        return label(self.target, self.route)

    @property
    def errors(self) -> list[str]:
        """What went wrong in its wrk runs (a stream that fails stops the run instead)."""
        runs = (self.c1, self.c32)
        return [f"c={r.concurrency}: {r.non_2xx} non-2xx, {r.socket_errors} socket" for r in runs if not r.ok]


def label(target: str, route: Route) -> str:
    return f"{target} {route.api} {route.route}".rstrip()


# --------------------------------------------------------------------------- config and scripts


def gateway_config(upstream: str, ledger: Path, *, provider_apis: bool = True, client: str = "aiohttp") -> str:
    """proxy_bench's gateway config with the three providers; `provider_apis=False` leaves out the
    `apis` field, which a checkout before the redesign does not know."""
    config = yaml.safe_load(pb.gateway_config(upstream, client))
    openai = config["providers"].pop("upstream")
    config["providers"] = {
        "openai": openai,
        "chat-only": {**openai, **({"apis": ["chat", "embeddings"]} if provider_apis else {})},
        "anthropic": {"type": "anthropic", "base_url": upstream, "api_key": pb.PROVIDER_KEY},
    }
    config["models"] = {
        "bench-model": {"provider": "openai", "upstream": "gpt-4o-mini"},
        "bench-chat-only": {"provider": "chat-only", "upstream": "gpt-4o-mini"},
        "bench-claude": {"provider": "anthropic", "upstream": "claude-sonnet-4-5"},
    }
    config["ledger"] = {"path": str(ledger)}
    return yaml.safe_dump(config, sort_keys=False)


def lua_script(workdir: Path, route: Route) -> Path:
    """A wrk script POSTing this route's body with its API's headers (the key is the gateway's)."""
    call = APIS[route.api]
    body = json.dumps(call.request(route.model), separators=(",", ":"))
    lines = [f"-- {route.api} {route.route}: generated by bench/apis_bench.py", 'wrk.method = "POST"']
    lines.append(f"wrk.body = [==[{body}]==]")
    headers = {"Content-Type": "application/json", **call.headers(pb.GATEWAY_KEY)}
    lines += [f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}" for name, value in headers.items()]
    path = workdir / f"{route.api}-{route.model}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def verify(target: str, base: str, route: Route) -> None:
    """One whole call must answer 200 with the upstream's text, by the route the row says."""
    call = APIS[route.api]
    body = json.dumps(call.request(route.model)).encode()
    status, reply = pb.request_once("POST", base + call.path, body, pb.GATEWAY_KEY)
    text = reply.decode(errors="replace")
    problem = None
    if status != 200 or answers.TEXT not in text:
        problem = f"got {status}, not the upstream's text"
    elif (call.own_id in text) != (route.route != "translated"):
        problem = "the answer's id does not match the route (passed through keeps the upstream's id)"
    if problem:
        raise pb.BenchError(f"{target} {route.api} {route.route}: the check call {problem}: {text[:500]}")


# --------------------------------------------------------------------------- the checkout before


def git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise pb.BenchError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


@contextlib.contextmanager
def before_checkout(ref: str) -> Iterator[tuple[str, list[str]]]:
    """A throwaway worktree of `ref`, installed in BEFORE_VENV: its commit and `agentgw` command.
    The worktree is removed at the end of the run."""
    commit = git("rev-parse", "--verify", f"{ref}^{{commit}}")
    with tempfile.TemporaryDirectory(prefix="agentgw-before-") as tmp:
        tree = Path(tmp) / "tree"
        git("worktree", "add", "--detach", "--quiet", str(tree), commit)
        try:
            yield commit, [str(install_before(tree, commit))]
        finally:
            git("worktree", "remove", "--force", str(tree))


def install_before(tree: Path, commit: str) -> Path:
    """BEFORE_VENV with `tree` installed (not editable: the tree goes away), reused while the commit
    it holds is `commit` and made again otherwise."""
    marker, executable = BEFORE_VENV / "agentgw-commit", BEFORE_VENV / "bin" / "agentgw"
    if executable.exists() and marker.exists() and marker.read_text().strip() == commit:
        return executable
    print(f"installing {commit[:12]} into {BEFORE_VENV.relative_to(REPO)} ...", flush=True)
    shutil.rmtree(BEFORE_VENV, ignore_errors=True)
    pip = [str(BEFORE_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for command in (
        [sys.executable, "-m", "venv", str(BEFORE_VENV)],
        [*pip, "-c", str(tree / "constraints.txt"), str(tree)],
    ):
        if subprocess.run(command, check=False).returncode != 0:
            raise pb.BenchError(f"could not install the checkout before: {' '.join(command)} failed")
    marker.write_text(commit + "\n")
    return executable


# --------------------------------------------------------------------------- targets and rows


def start_gateway(
    services: pb.Services, name: str, command: list[str], upstream: str, **config: Any
) -> tuple[pb.Service, str]:
    """`agentgw serve` (`command`) with the config above, on the core under test, and its base URL."""
    path = services.workdir / f"{name}.yaml"
    path.write_text(gateway_config(upstream, services.workdir / f"{name}.db", **config))
    port = pb.free_port()
    argv = [*command, "serve", "-c", str(path), "--port", str(port), "--log-level", "warning"]
    # PYTHONPATH cleared: the checkout before must not import this checkout's packages.
    service = services.start(name, argv, pb.SUT_CPU, env={"PYTHONPATH": ""})
    base = f"http://127.0.0.1:{port}"
    pb.wait_ready(service, base + "/healthz", pb.STARTUP_TIMEOUT)
    return service, base


def measure_row(target: str, base: str, route: Route, args: argparse.Namespace, workdir: Path) -> Row:
    """wrk at c=1 and c=32, then the streamed calls (not for `direct`, measured for headroom only)."""
    verify(target, base, route)
    row = Row(target, route, *wrk_runs(target, base, route, args, lua_script(workdir, route)))
    if target != "direct":
        row.stream = stream_runs(row, base, args)
    return row


def wrk_runs(target: str, base: str, route: Route, args: argparse.Namespace, script: Path) -> list[pb.WrkResult]:
    path, pin, seconds = APIS[route.api].path, not args.no_pin, args.duration
    return pb.measure(
        label(target, route), base, pb.GATEWAY_KEY, seconds, pin, path=path, script=script, warmup=args.warmup
    )


def stream_runs(row: Row, base: str, args: argparse.Namespace) -> ob.StreamResult:
    call = APIS[row.route.api]
    body, headers = call.request(row.route.model, stream=True), call.headers(pb.GATEWAY_KEY)
    key, requests, pin = pb.GATEWAY_KEY, args.stream_requests, not args.no_pin
    result = ob.stream_run(base, key, requests, pin, path=call.path, body=body, headers=headers, end=call.end)
    print(
        f"  {row.label:<22} stream  first event p50 {result.ttfc_p50_ms:7.3f} ms  p99 {result.ttfc_p99_ms:7.3f} ms  "
        f"whole stream p50 {result.total_p50_ms:7.3f} ms",
        flush=True,
    )
    return result


def run(args: argparse.Namespace, services: pb.Services, before_command: list[str]) -> list[Row]:
    rows: list[Row] = []
    workdir = services.workdir

    def measure_all(target: str, base: str, routes: Sequence[Route]) -> None:
        rows.extend(measure_row(target, base, route, args, workdir) for route in routes)

    _, upstream = pb.start_upstream(services)
    measure_all("direct", upstream, list(UNROUTED.values()))
    with pb.running(services, pb.start_bare_proxy(services, upstream)) as base:
        measure_all("bare", base, list(UNROUTED.values()))
    chat = [route for route in ROUTES if route.api == "chat"]
    with pb.running(services, start_gateway(services, "before", before_command, upstream, provider_apis=False)) as base:
        measure_all("before", base, chat)
    aiohttp = start_gateway(services, "agentgw-aiohttp", pb.agentgw_command(), upstream, client="aiohttp")
    with pb.running(services, aiohttp) as base:
        measure_all("agentgw-aiohttp", base, chat)
    default = start_gateway(services, "agentgw", pb.agentgw_command(), upstream, client="httptools")
    with pb.running(services, default) as base:
        measure_all("agentgw", base, ROUTES)  # chat first, next to the checkout before
    return rows


# --------------------------------------------------------------------------- report


def find(rows: list[Row], target: str, api: str, route: str = "") -> Row | None:
    return next((r for r in rows if (r.target, r.route.api, r.route.route) == (target, api, route)), None)


def against(row: Row, base: Row | None) -> dict[str, float | None]:
    """`row` against `base`: latency added (ms), throughput as a fraction."""
    if base is None:
        return {}

    def streamed(name: str) -> float | None:
        if row.stream is None or base.stream is None:
            return None
        return float(getattr(row.stream, name) - getattr(base.stream, name))

    return {
        "added_p50_ms_c1": row.c1.p50_ms - base.c1.p50_ms,
        "added_p99_ms_c1": row.c1.p99_ms - base.c1.p99_ms,
        "rps_c32_ratio": pb.ratio(row.c32.requests_per_s, base.c32.requests_per_s),
        "added_first_event_p50_ms": streamed("ttfc_p50_ms"),
        "added_whole_stream_p50_ms": streamed("total_p50_ms"),
    }


def derived(rows: list[Row]) -> dict[str, dict[str, dict[str, float | None]]]:
    """Each gateway row against the bare pass-through of its API, and chat after against before."""
    out: dict[str, dict[str, dict[str, float | None]]] = {"vs_bare": {}, "after_vs_before": {}}
    for row in rows:
        if row.target in ("before", "agentgw", "agentgw-aiohttp"):
            out["vs_bare"][row.label] = against(row, find(rows, "bare", row.route.api))
        if row.target in ("agentgw", "agentgw-aiohttp") and row.route.api == "chat":
            before = find(rows, "before", "chat", row.route.route)
            out["after_vs_before"][f"{row.target} {row.route.route}"] = against(row, before)
    return out


def print_measurements(rows: list[Row]) -> None:
    print(f"\n{'target':<16} {'api':<10} {'route':<13} {'c=1 p50':>8} {'c=1 p99':>8} {'c=32 req/s':>10}", end="")
    print(f" {'1st event p50':>13} {'p99':>8} {'stream p50':>10}  errors")
    for row in rows:
        s = row.stream
        streamed = f"{s.ttfc_p50_ms:13.3f} {s.ttfc_p99_ms:8.3f} {s.total_p50_ms:10.3f}" if s else " " * 33
        print(
            f"{row.target:<16} {row.route.api:<10} {row.route.route or '-':<13} {row.c1.p50_ms:8.3f} "
            f"{row.c1.p99_ms:8.3f} {row.c32.requests_per_s:10.0f} {streamed}  {'; '.join(row.errors)}".rstrip()
        )


def print_comparisons(rows: list[Row], numbers: dict[str, dict[str, dict[str, float | None]]]) -> None:
    print("\nagainst the bare pass-through of the same API (ms added; c=32 throughput as a fraction of bare)")
    print(f"{'target':<16} {'api':<10} {'route':<13} {header('c=32/bare')}  via")
    for row in rows:
        d = numbers["vs_bare"].get(row.label)
        if d is not None:
            print(f"{row.target:<16} {row.route.api:<10} {row.route.route:<13} {columns(d)}  {row.route.via}")
    print("\nchat, agentgw against the checkout before (ms added after minus before; c=32 as after/before)")
    print(f"{'target':<16} {'api':<6} {'route':<13} {header('c=32/before')}")
    for name, d in numbers["after_vs_before"].items():
        target, route = name.split(" ", 1)
        print(f"{target:<16} {'chat':<6} {route:<13} {columns(d)}")


def header(ratio: str) -> str:
    return f"{'+p50 c=1':>9} {'+p99 c=1':>9} {ratio:>11} {'+1st event p50':>14} {'+stream p50':>11}"


def columns(d: dict[str, float | None]) -> str:
    return (
        f"{pb.fmt(d.get('added_p50_ms_c1'), '+9.3f')} {pb.fmt(d.get('added_p99_ms_c1'), '+9.3f')} "
        f"{pb.fmt(d.get('rps_c32_ratio'), '11.2f')} {pb.fmt(d.get('added_first_event_p50_ms'), '+14.3f')} "
        f"{pb.fmt(d.get('added_whole_stream_p50_ms'), '+11.3f')}"
    )


def write_json(rows: list[Row], numbers: dict[str, Any], meta: dict[str, Any]) -> Path:
    def wrk(result: pb.WrkResult) -> dict[str, Any]:
        return {k: v for k, v in asdict(result).items() if k != "raw"}

    serial = [
        {
            "target": row.target,
            **asdict(row.route),
            "c1": wrk(row.c1),
            "c32": wrk(row.c32),
            "stream": asdict(row.stream) if row.stream else None,
            "errors": row.errors,
        }
        for row in rows
    ]
    pb.RESULTS_DIR.mkdir(exist_ok=True)
    path = pb.RESULTS_DIR / f"apis-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps({"meta": meta, "rows": serial, "derived": numbers}, indent=2) + "\n")
    return path


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk measurement (default 10)")
    parser.add_argument("--stream-requests", type=int, default=300, help="sequential streamed calls per row")
    parser.add_argument("--before", default=BEFORE_REF, help=f"git ref of the checkout before (default {BEFORE_REF})")
    parser.add_argument("--quick", action="store_true", help=f"short runs, to check the script works: {QUICK}")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs with taskset")
    args = parser.parse_args(argv)
    args.warmup = pb.WARMUP_SECONDS
    if args.quick:
        vars(args).update(QUICK)
    return args


def metadata(args: argparse.Namespace, before_commit: str) -> dict[str, Any]:
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "stream_requests": args.stream_requests,
        "pinned": not args.no_pin,
        "pinning": None if args.no_pin else {"under_test": pb.SUT_CPU, "load_and_upstream": pb.LOAD_CPU},
        "before": {"ref": args.before, "commit": before_commit},
        "after": {"commit": git("rev-parse", "HEAD"), "uncommitted_changes": dirty},
        "routes": [asdict(route) for route in ROUTES],
        "requests": {api: call.request("<model>") for api, call in APIS.items()},
        "gateway_config": yaml.safe_load(gateway_config("http://<upstream>", Path("<ledger>"))),
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, pb._interrupt)  # ends the run like Ctrl-C: services and worktree go
    try:
        pb.check_tools(not args.no_pin)
        with before_checkout(args.before) as (before_commit, before_command):
            rows = measure_everything(args, before_command)
    except pb.BenchError as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    numbers = derived(rows)
    print_measurements(rows)
    print_comparisons(rows, numbers)
    path = write_json(rows, numbers, metadata(args, before_commit))
    print(f"\nresults written to {path.relative_to(REPO)}")
    return 0


def measure_everything(args: argparse.Namespace, before_command: list[str]) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="agentgw-apis-") as tmp:
        services = pb.Services(Path(tmp), pin=not args.no_pin)
        try:
            print(f"wrk: {args.duration:g} s per run after {args.warmup:g} s of warm-up, at c=1 and c=32")
            print(f"streams: {args.stream_requests} sequential calls per row (after 20 of warm-up)")
            return run(args, services, before_command)
        finally:
            services.stop_all()


if __name__ == "__main__":
    sys.exit(main())
