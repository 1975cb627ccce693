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
