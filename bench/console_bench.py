"""The console's weight and speed: each page loaded cold in headless Chromium against a gateway
whose ledger holds N generated events (bench/console_seed.py), signed in as an admin key.

For each page it reports the bytes over the wire (the document, scripts, styles and the JSON the
page asked for, as the browser's resource timing counts them: compressed bodies and headers), the
time until the page's shell was usable (DOMContentLoaded) and until its data was drawn (the
`ready:<page>` performance mark the console sets), both from navigation start. Each page is
loaded in a fresh browser context (no cache), three times; the median is printed. Before that,
every page is loaded once, in order, right after the gateway started: that first view's data time
is printed too (a restarted gateway's first answers are slower; the timed runs are a running one's).

Run: python bench/console_bench.py [--events 100000] [--screenshots docs/console]
The system Chromium is used (/usr/bin/chromium, or --chromium PATH); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.console_seed import seed

ADMIN_KEY = "console-bench-admin-key"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
PAGES = [
    "overview",
    "usage",
    "budgets",
    "agents",
    "sessions",
    "sessions?id=s-00050",
    "routes",
    "guardrails",
    "feedback",
]
SHOTS = {"overview": "overview", "usage": "usage", "agents": "agents", "sessions?id=s-00050": "session-replay"}


def config(ledger: Path, port: int) -> dict[str, object]:
    return {
        "server": {"host": "127.0.0.1", "port": port},
        "ledger": {"path": str(ledger)},
        "providers": {"mock": {"type": "mock"}},
        "models": {"gpt-4o-mini": {"provider": "mock"}, "claude-sonnet": {"provider": "mock"}},
        "routes": {"smart": {"strategy": "fallback", "candidates": ["claude-sonnet", "gpt-4o-mini"]}},
        "teams": {
            "research": {"budget": {"usd": 2500, "period": "month"}, "agent_budget": {"usd": 20, "period": "day"}},
            "support": {"budget": {"usd": 400, "period": "month"}},
            "billing": {},
        },
        "keys": [{"name": "admin", "key": ADMIN_KEY, "team": "research", "role": "admin"}],
    }


@contextlib.contextmanager
def gateway(ledger: Path) -> Iterator[str]:
    from tests.gateway_harness import free_port

    port = free_port()
    workdir = ledger.parent
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config(ledger, port)))
    log = (workdir / "gateway.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "-c", str(path)], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/healthz", timeout=0.5).status_code == 200:
                    break
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(15)
        log.close()


def measure(url: str, chromium: str, runs: int, shots: Path | None) -> list[tuple[str, int, float, float, float]]:
    """Per page: bytes, shell usable and data drawn (medians of `runs` loads), and data drawn on the
    page's first load after the gateway started (the pages are first loaded once each, in order)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        signed = browser.new_context()
        signed.request.post(url + "/ui/login", data={"key": ADMIN_KEY}, headers={"origin": url})
        cookies = signed.cookies()
        signed.close()

        def load(page_name: str, shot: Path | None) -> list[float]:
            context = browser.new_context(viewport={"width": 1280, "height": 860})
            context.add_cookies(cookies)
            page = context.new_page()
            page.goto(f"{url}/ui#/{page_name}")
            ready = page_name.split("?")[0]
            page.wait_for_selector(f"body[data-ready='{ready}']", timeout=20_000)
            page.wait_for_load_state("load")
            numbers: list[float] = page.evaluate(
                """(ready) => {
                const nav = performance.getEntriesByType('navigation')[0];
                const resources = performance.getEntriesByType('resource');
                const bytes = nav.transferSize + resources.reduce((sum, r) => sum + r.transferSize, 0);
                const drawn = performance.getEntriesByName('ready:' + ready)[0].startTime;
                return [bytes, nav.domContentLoadedEventEnd, drawn];
                }""",
                ready,
            )
            if shot is not None:
                shot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(shot))
            context.close()
            return numbers

        first = {name: load(name, None)[2] for name in PAGES}
        results = []
        for page_name in PAGES:
            samples = []
            for run in range(runs):
                shoot = shots is not None and run == 0 and page_name in SHOTS
                samples.append(load(page_name, shots / f"{SHOTS[page_name]}.png" if shots and shoot else None))
            results.append((
                page_name, int(statistics.median(s[0] for s in samples)),
                statistics.median(s[1] for s in samples), statistics.median(s[2] for s in samples), first[page_name],
            ))  # fmt: skip
        browser.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    parser.add_argument("--screenshots", type=Path, default=None, help="save PNGs of four pages here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agentgw-console-") as tmp:
        ledger = Path(tmp) / "agentgw.db"
        started = time.perf_counter()
        seed(ledger, args.events)
        print(f"ledger: {args.events:,} events ({time.perf_counter() - started:.1f} s to generate)")
        with gateway(ledger) as url:
            results = measure(url, args.chromium, args.runs, args.screenshots)
    print(f"{'page':<24}{'over the wire':>16}{'shell usable':>16}{'data drawn':>14}{'first after start':>20}")
    for name, size, shell, drawn, first in results:
        print(f"{name:<24}{size / 1024:>13.1f} KB{shell:>13.0f} ms{drawn:>11.0f} ms{first:>17.0f} ms")


if __name__ == "__main__":
    main()
