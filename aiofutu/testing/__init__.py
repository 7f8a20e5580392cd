"""Test your own bot against the bundled simulator, with pytest fixtures.

Enable the fixtures in your ``conftest.py`` (or in a test module)::

    pytest_plugins = ["aiofutu.testing"]

then write async tests (run them with anyio's pytest plugin: ``@pytest.mark.anyio``)::

    @pytest.mark.anyio
    @pytest.mark.opend(burst=500)  # 500 ticks as soon as the bot subscribes
    async def test_my_bot(opend, client):
        ...

``opend`` is a running :class:`aiofutu.sim.Simulator` on a free loopback port, quiet by default
(``tick_rate=0``: drive it with ``await opend.burst(code, n)``, or a scenario; set a quote, an
order book or a broker queue exactly with ``opend.set_quote(code, last_price=...)``,
``opend.set_order_book(code, bids=[(price, volume, orders)], asks=...)`` and
``opend.set_broker_queue(...)``, or push many books with ``await opend.burst_books(code, n)``);
``client`` is an
:class:`aiofutu.Client` connected to it. To configure the simulator (any ``SimConfig`` field),
decorate a test with ``@opend_config(scenario="gaps", ...)``, override the ``opend_options``
fixture, or, when the plugin is enabled in a ``conftest.py``, mark a test with
``@pytest.mark.opend(...)`` (a marker is checked when the test module is imported, before a
``pytest_plugins`` line in that same module registers it).

The simulator knows the real codes of :data:`aiofutu.sim.DEFAULT_UNIVERSE` (HK.00700, US.AAPL,
SH.600519, ...) and refuses every other code as OpenD refuses an unknown stock, so a bot can test
that path. To give it more securities, override the ``opend_securities`` fixture (a mapping of
code to a name, or a list of codes) or pass ``securities=`` through ``opend_config`` / the marker;
both add to the list.

For synchronous code (a thread-based bot, the official SDK, a subprocess),
:func:`background_simulator` runs a simulator on its own event loop in a thread.

For a JavaScript client (the npm ``futu-api`` SDK), start OpenD's WebSocket gateway beside the
TCP port with ``@opend_config(websocket_port=0)`` (or ``background_simulator(websocket_port=0)``;
add ``websocket_key="..."`` to require a key) and connect it to ``opend.websocket_port``.

PYTEST_DONT_REWRITE: a test module may import ``opend_config`` from here before its own
``pytest_plugins`` line registers the plugin; this marker keeps pytest from warning that the
module was imported before it could rewrite its asserts (it has none that need it).
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import anyio.from_thread
import pytest

from ..client import Client, connect
from ..sim import SimConfig, Simulator, serve
from ..sim._universe import listings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping

    from anyio.from_thread import BlockingPortal

__all__ = (
    "BackgroundSimulator",
    "background_simulator",
    "client",
    "opend",
    "opend_config",
    "opend_options",
    "opend_securities",
)

_DEFAULTS: dict[str, Any] = {"tick_rate": 0.0, "seed": 1}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "opend(**options): options for the aiofutu.testing simulator (SimConfig fields)"
    )


@pytest.fixture
def opend_options() -> dict[str, Any]:
    """SimConfig fields for the ``opend`` fixture; override it to change every test's simulator."""
    return dict(_DEFAULTS)


@pytest.fixture
def opend_securities() -> Mapping[str, str] | Iterable[str]:
    """Securities the ``opend`` simulator knows besides its default list: codes, or a mapping of
    code to a name (or an :class:`aiofutu.sim.Listing`). Override it to add your own."""
    return {}


def _short(value: object) -> str:
    """A test-id-friendly rendering: long keys and paths are summarised, not spelled out (by
    type only: a key made at collection differs between runs, and ids must not, for xdist)."""
    text = str(value)
    return text if len(text) <= 24 else f"<{type(value).__name__}>"


def opend_config(**options: Any) -> pytest.MarkDecorator:
    """Simulator options for one test: ``@opend_config(burst=500)`` (any ``SimConfig`` field).

    It parametrizes the ``opend_options`` fixture (the defaults plus ``options``), so it works
    wherever the plugin is enabled. The options are checked at once: a typo fails collection.
    """
    SimConfig(**options)
    label = ",".join(f"{key}={_short(value)}" for key, value in options.items()) or "defaults"
    return pytest.mark.parametrize("opend_options", [{**_DEFAULTS, **options}], ids=[label])


@pytest.fixture
async def opend(
    request: pytest.FixtureRequest,
    opend_options: dict[str, Any],
    opend_securities: Mapping[str, str] | Iterable[str],
) -> AsyncIterator[Simulator]:
    """A running simulator on 127.0.0.1 and a free port."""
    options = dict(opend_options)
    marker = request.node.get_closest_marker("opend")
    if marker is not None:
        options.update(marker.kwargs)
    # The fixture's securities and those of the options add up (the options' win on a clash).
    options["securities"] = (*listings(opend_securities), *listings(options.get("securities", ())))
    options.setdefault("host", "127.0.0.1")
    options.setdefault("port", 0)
    async with serve(**options) as server:
        yield server


@pytest.fixture
async def client(opend: Simulator) -> AsyncIterator[Client]:
    """An aiofutu client connected to the ``opend`` simulator."""
    async with connect(
        opend.host,
        opend.port,
        client_id="aiofutu-testing",
        timeout=10,
        rsa_private_key=opend.config.rsa_key,  # an encrypted simulator gets an encrypted client
    ) as c:
        yield c


class BackgroundSimulator:
    """A simulator served from a background thread; reach into it with :meth:`call`."""

    def __init__(self, portal: BlockingPortal, server: Simulator) -> None:
        self.portal = portal
        #: The simulator itself. Read or change it only through :meth:`call`.
        self.server = server
        self.host = server.host
        self.port = server.port
        #: The WebSocket gateway's port (``websocket_port=0`` picks one), or None without one.
        self.websocket_port = server.websocket_port

    def call(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``func(*args, **kwargs)`` (plain or async) on the simulator's event loop."""
        return self.portal.call(functools.partial(func, *args, **kwargs))


@contextmanager
def background_simulator(**options: Any) -> Iterator[BackgroundSimulator]:
    """Run ``sim.serve(**options)`` on an event loop in a thread, for synchronous tests::

    with background_simulator(tick_rate=0) as sim:
        subprocess.run([..., "--port", str(sim.port)])
        sim.call(sim.server.burst, "HK.00700", 100)
    """
    options.setdefault("host", "127.0.0.1")
    options.setdefault("port", 0)
    with anyio.from_thread.start_blocking_portal() as portal:
        cm = portal.call(_make_server, options)
        with portal.wrap_async_context_manager(cm) as server:
            yield BackgroundSimulator(portal, server)


def _make_server(options: dict[str, Any]) -> Simulator:
    return serve(**options)
