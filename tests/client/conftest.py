from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import aiofutu
from aiofutu import sim


@pytest.fixture
async def server() -> AsyncIterator[sim.Simulator]:
    async with sim.serve(port=0, seed=7, tick_rate=0, codes=("HK.00700", "US.AAPL")) as srv:
        yield srv


@pytest.fixture
async def client(server: sim.Simulator) -> AsyncIterator[aiofutu.Client]:
    async with aiofutu.connect("127.0.0.1", server.port, timeout=5) as c:
        yield c
