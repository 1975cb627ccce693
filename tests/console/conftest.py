"""A gateway over the small fleet's ledger, shared by a module's tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.console import fleet
from tests.gateway_harness import Gateway


@pytest.fixture(scope="module")
def console_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    workdir = tmp_path_factory.mktemp("console")
    fleet.write(workdir / "agentgw.db")
    gateway = Gateway(fleet.config(), workdir).start()
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the browser tests (they are one module); each test opens its own
    context (cookies apart). Module scope: while Playwright's sync API runs, this thread has an
    event loop running, and tests after these ones call asyncio.run()."""
    from tests.console.browser import ARGS, require_chromium

    binary = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=binary, args=ARGS)
        yield chromium
        chromium.close()
