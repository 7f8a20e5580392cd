from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import pytest

import aiofutu
from aiofutu import sim

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

#: The transports a module runs on when it sets ``BOTH_TRANSPORTS = True``: OpenD's TCP API and
#: its WebSocket gateway (the same client above the connection; see docs/websocket.md).
TRANSPORTS = ("tcp", "websocket")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Modules about the network opt in (``BOTH_TRANSPORTS = True``) to run on both transports,
    like every async test runs on asyncio and trio."""
    module = metafunc.module
    if "transport" in metafunc.fixturenames and getattr(module, "BOTH_TRANSPORTS", False):
        one = metafunc.function.__name__ in getattr(module, "TCP_ONLY", ())
        metafunc.parametrize("transport", TRANSPORTS[:1] if one else TRANSPORTS, indirect=True)


@pytest.fixture
def transport(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "tcp"))


class Net:
    """How a test reaches a simulator on the transport under test: ``net.connect(server)`` in
    place of ``aiofutu.connect("127.0.0.1", server.port)``, ``net.serve(...)`` in place of
    ``sim.serve(...)`` (it adds the WebSocket gateway when that is the transport)."""

    def __init__(self, transport: str) -> None:
        self.transport = transport
        self.websocket = transport == "websocket"

    def port(self, server: sim.Simulator) -> int:
        if not self.websocket:
            return server.port
        assert server.websocket_port is not None, "the simulator has no WebSocket gateway"
        return server.websocket_port

    def options(self) -> dict[str, Any]:
        return {"transport": "websocket"} if self.websocket else {}

    def connect(self, server: sim.Simulator | int, **kwargs: Any) -> aiofutu.Client:
        port = server if isinstance(server, int) else self.port(server)
        return aiofutu.connect("127.0.0.1", port, **self.options(), **kwargs)

    def same_ports(self, server: sim.Simulator) -> dict[str, Any]:
        """``serve()`` options for a new simulator on the ports ``server`` had (a restart)."""
        return {"port": server.port, "websocket_port": server.websocket_port}

    @asynccontextmanager
    async def serve(self, **options: Any) -> AsyncIterator[sim.Simulator]:
        if self.websocket:
            options.setdefault("websocket_port", 0)
        async with sim.serve(**options) as server:
            yield server


@pytest.fixture
def net(transport: str) -> Net:
    return Net(transport)


@pytest.fixture
def opend_options(transport: str) -> dict[str, Any]:
    options: dict[str, Any] = {"tick_rate": 0.0, "seed": 7, "codes": ("HK.00700", "US.AAPL")}
    if transport == "websocket":
        options["websocket_port"] = 0
    return options


@pytest.fixture
def server(opend: sim.Simulator) -> sim.Simulator:
    return opend


@pytest.fixture
async def client(opend: sim.Simulator, net: Net) -> AsyncIterator[aiofutu.Client]:
    """The plugin's ``client``, on the transport under test."""
    async with net.connect(
        opend, client_id="aiofutu-testing", timeout=10, rsa_private_key=opend.config.rsa_key
    ) as c:
        yield c
