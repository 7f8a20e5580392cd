"""Test your own bot against the bundled simulator, with pytest fixtures.

Enable the fixtures in your ``conftest.py``::

    pytest_plugins = ["aiofutu.testing"]

then write tests (with the anyio pytest plugin, e.g. ``anyio_mode = "auto"``)::

    async def test_my_bot(opend, client):
        await client.subscribe(["HK.00700"], ["TICKER"])
        ticks = await client.get_rt_ticker("HK.00700", 10)
        ...

``opend`` is a running :class:`aiofutu.sim.Simulator` on a free loopback port, quiet by default
(``tick_rate=0``: drive it with ``await opend.burst(code, n)``); ``client`` is an
:class:`aiofutu.Client` connected to it. Override the ``opend_options`` fixture, or mark a test
with ``@pytest.mark.opend(tick_rate=50, seed=3)``, to configure the simulator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from ..client import Client, connect
from ..sim import Simulator, serve

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ("client", "opend", "opend_options")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "opend(**options): options for the aiofutu.testing simulator (SimConfig fields)"
    )


@pytest.fixture
def opend_options() -> dict[str, Any]:
    """SimConfig fields for the ``opend`` fixture; override it to change every test's simulator."""
    return {"tick_rate": 0.0, "seed": 1}


@pytest.fixture
async def opend(
    request: pytest.FixtureRequest, opend_options: dict[str, Any]
) -> AsyncIterator[Simulator]:
    """A running simulator on 127.0.0.1 and a free port."""
    options = dict(opend_options)
    marker = request.node.get_closest_marker("opend")
    if marker is not None:
        options.update(marker.kwargs)
    options.setdefault("host", "127.0.0.1")
    options.setdefault("port", 0)
    async with serve(**options) as server:
        yield server


@pytest.fixture
async def client(opend: Simulator) -> AsyncIterator[Client]:
    """An aiofutu client connected to the ``opend`` simulator."""
    async with connect(opend.host, opend.port, client_id="aiofutu-testing", timeout=10) as c:
        yield c
