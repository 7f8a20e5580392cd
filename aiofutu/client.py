"""The public client: ``async with aiofutu.connect(...) as client``.

A small facade: lifecycle, requests, subscriptions, streams and stats. It validates arguments
before anything is sent, keeps the subscription book (updated only when OpenD confirms) and one
push router per quote kind (from ``_kinds.KINDS``), all fed by one
:class:`~aiofutu._connection.Connection` through a :class:`~aiofutu._routing.PushHub`. Keeping
the link up is :mod:`aiofutu._supervisor`; the quote verbs are one mixin per kind
(:mod:`aiofutu.quotes.ticker`).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from . import _protocol, _supervisor
from ._codec import DEFAULT_MAX_BODY, Frame
from ._crypto import RsaKey
from ._kinds import KINDS, KINDS_BY_NAME
from ._pb import get_global_state_pb2
from ._ratelimit import Limit, make_limiter
from ._routing import Attacher, KindRouter, PushHub, stream_stats
from ._wsconnection import DEFAULT_PING_INTERVAL, WebSocketOptions, new_connection
from .enums import ProtoId, SubType
from .errors import (
    ClientClosed,
    ConfigurationError,
    ConnectionLost,
    FutuError,
)
from .quotes._core import check_timeout as _check_timeout
from .quotes._ticker_router import MAX_TICKER_NUM  # noqa: F401 (its old home)
from .quotes.book_api import OrderBookAPI
from .quotes.broker_api import BrokerAPI
from .quotes.history_api import HistoryAPI
from .quotes.market import MarketStateAPI
from .quotes.quote_api import QuoteAPI
from .quotes.series import RTAPI, KLineAPI
from .quotes.snapshot_api import SnapshotAPI
from .quotes.static import StaticAPI
from .quotes.subscribe import SubscriptionAPI
from .quotes.ticker import TickerAPI
from .state import ClientState, ReconnectPolicy, StateChange, StateWatch
from .subscriptions import SubscriptionBook, SubscriptionInfo

if TYPE_CHECKING:
    import os
    import ssl as _ssl
    from collections.abc import Mapping
    from types import TracebackType

    from ._connection import Connection

__all__ = ("Client", "SubscriptionInfo", "connect")

logger = logging.getLogger("aiofutu.client")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 11111
_TRAFFIC_COUNTERS = ("bytes_in", "bytes_out", "bad_frames", "unmatched_replies")
#: the old private name of :class:`~aiofutu.state.StateWatch`
_StateWatch = StateWatch
#: How long closing waits for the client's own tasks to end (they end at once when cancelled).
_SERVICES_EXIT_TIMEOUT = 5.0
#: States in which a request waits (within its timeout) for the link to be up.
_NOT_YET = (ClientState.CONNECTING, ClientState.RECONNECTING)


class Client(
    SubscriptionAPI,
    TickerAPI,
    QuoteAPI,
    OrderBookAPI,
    BrokerAPI,
    KLineAPI,
    RTAPI,
    HistoryAPI,
    MarketStateAPI,
    SnapshotAPI,
    StaticAPI,
):
    """An OpenD quote session. Create it with :func:`connect` and use it as an async context.

    Every method raises :class:`~aiofutu.ClientClosed` after the client was closed and
    :class:`~aiofutu.ConnectionLost` when the link to OpenD is down (with ``reconnect``, calls made
    while reconnecting wait up to their timeout for the link to return).
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        client_id: str = "aiofutu",
        timeout: float = 12.0,
        connect_timeout: float = 10.0,
        max_body: int = DEFAULT_MAX_BODY,
        reconnect: bool | ReconnectPolicy = False,
        rsa_private_key: str | os.PathLike[str] | bytes | None = None,
        rate_limits: bool | Mapping[int, Limit | tuple[int, float]] = True,
        transport: str = "tcp",
        websocket_key: str | None = None,
        ssl: bool | _ssl.SSLContext | None = None,
        websocket_ping_interval: float = DEFAULT_PING_INTERVAL,
    ) -> None:
        if not isinstance(host, str) or not host:
            raise ConfigurationError(f"host must be a non-empty str, got {host!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigurationError(f"port must be an int in 1..65535, got {port!r}")
        if not isinstance(client_id, str) or not client_id:
            raise ConfigurationError(f"client_id must be a non-empty str, got {client_id!r}")
        _check_timeout(timeout)
        _check_timeout(connect_timeout, "connect_timeout")
        if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1:
            raise ConfigurationError(f"max_body must be a positive int, got {max_body!r}")
        if reconnect is True:
            reconnect = ReconnectPolicy()
        if reconnect is not False and not isinstance(reconnect, ReconnectPolicy):
            raise ConfigurationError(
                f"reconnect must be a bool or a ReconnectPolicy, got {reconnect!r}"
            )
        # PEM bytes are parsed now; a key file is read (off the event loop) when entering.
        self.rsa_key, self._rsa_path = RsaKey.option(rsa_private_key)
        self.websocket = WebSocketOptions.check(
            transport, websocket_key, ssl, websocket_ping_interval, encrypted=bool(rsa_private_key)
        )
        self._transport_name = transport
        #: OpenD's request-rate limits, kept for every task of this client (waits, not errors)
        self._limiter = make_limiter(rate_limits)
        self._limited = frozenset(self._limiter.limits)
        self.host = host
        self.port = port
        self.client_id = client_id
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout)
        self.max_body = max_body
        self.policy: ReconnectPolicy | None = reconnect or None
        self.reconnects = 0
        self._latencies: deque[float] = deque(maxlen=1024)
        self._totals = dict.fromkeys(_TRAFFIC_COUNTERS, 0)
        #: one push router per quote kind, all fed through one hub
        self._routers: dict[str, KindRouter] = {k.name: k.new_router() for k in KINDS}
        self._pushes = PushHub(on_push=self._on_push)
        for router in self._routers.values():
            self._pushes.add(router)
        #: what OpenD confirmed: one record per (code, SubType), with its push options
        self._book = SubscriptionBook()
        self._conn = self._new_connection()
        self._services: anyio.abc.TaskGroup | None = None
        self._services_done: anyio.Event | None = None
        #: the asyncio task hosting ``_services`` (asyncio keeps only weak references to tasks)
        self._services_task: asyncio.Task[None] | None = None
        self._closed = False
        self._entered = False
        self._state = ClientState.CONNECTING
        self._upstream = True
        self._watchers: list[StateWatch] = []
        self._ready = anyio.Event()
        #: set when the link is lost and the supervisor should reconnect
        self._lost = anyio.Event()

    def _new_connection(self) -> Connection:
        old = getattr(self, "_conn", None)
        if old is not None:  # keep traffic totals across reconnects
            for name in self._totals:
                self._totals[name] += getattr(old, name)
        conn = new_connection(
            self.websocket,
            request_timeout=self.timeout,
            max_body=self.max_body,
            pushes=self._pushes,
        )
        conn.latencies = self._latencies
        conn.on_lost = lambda error: _supervisor.on_lost(self, conn, error)
        return conn

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Client:
        self._check_enter()
        self._entered = True
        try:
            if self._rsa_path is not None and self.rsa_key is None:
                self.rsa_key = await anyio.to_thread.run_sync(RsaKey.load, self._rsa_path)
            await self._start_services()
            await self._first_connect()
            assert self._services is not None
            if self.policy is not None:
                self._services.start_soon(_supervisor.supervise, self, name="aiofutu-reconnect")
        except BaseException as exc:
            await self._close(str(exc) if isinstance(exc, FutuError) else "connecting failed")
            raise
        self._set_state(ClientState.READY, None)
        self._ready.set()
        return self

    async def _first_connect(self) -> None:
        await _supervisor.first_connect(self)

    def _check_enter(self) -> None:
        if self._closed:
            raise ClientClosed(
                "this client is closed and cannot be opened again; call aiofutu.connect() "
                "for a new one"
            )
        if self._entered:
            raise ConfigurationError(
                "this client is already open: enter it once (one `async with`, or one "
                "AsyncExitStack.enter_async_context) and share that one client"
            )

    async def _start_services(self) -> None:
        """Start the task that hosts the connection's tasks, outside the caller's task tree.

        The caller's task holds no task group or cancel scope of ours, so the client can be
        entered in one hook and closed in another (even in another task), and closing it never
        cancels the caller's own code.
        """
        started = anyio.Event()
        done = self._services_done = anyio.Event()
        name = f"aiofutu-client-{id(self):x}"
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio: trio, whose system tasks need no nursery
            import trio

            trio.lowlevel.spawn_system_task(
                self._host_services, started, done, name=name, context=contextvars.copy_context()
            )
        else:
            self._services_task = loop.create_task(self._host_services(started, done), name=name)
        await started.wait()
        if self._services is None:
            raise ClientClosed("the client's service task ended before it started")

    async def _host_services(self, started: anyio.Event, done: anyio.Event) -> None:
        """Runs the connection's tasks until :meth:`aclose`; a bug in one closes the client."""
        try:
            async with anyio.create_task_group() as services:
                self._services = services
                if self._closed:  # closed (a cancelled __aenter__) before this task ran
                    services.cancel_scope.cancel()
                started.set()
                await anyio.sleep_forever()
        except Exception as exc:
            logger.error("an aiofutu background task failed; closing the client", exc_info=exc)
            error = ConnectionLost(f"an aiofutu background task failed: {exc!r}")
            self._closed = True
            self._pushes.end_all(error)
            self._set_state(ClientState.CLOSED, str(error))
            self._ready.set()
            self._lost.set()
            with anyio.CancelScope(shield=True):
                await self._conn.close()
        finally:
            self._services = None
            started.set()
            done.set()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection, end every stream and wait for the client's tasks to end.

        Idempotent, and done when the ``async with`` block exits. It may be called from any
        task, with or without ``async with``: a client opened with ``await
        client.__aenter__()`` in a startup hook is closed by ``await client.aclose()`` in the
        shutdown hook (see docs/services.md). It finishes even when the caller is cancelled.
        """
        await self._close("closed by the user")

    async def _close(self, cause: str) -> None:
        if not self._closed:
            self._closed = True
            self._pushes.end_all(None)
            self._set_state(ClientState.CLOSED, cause)
            self._ready.set()
            self._lost.set()
        with anyio.CancelScope(shield=True):
            await self._conn.close()
            services = self._services
            if services is not None:
                services.cancel_scope.cancel()
            done = self._services_done
            if done is not None and not done.is_set():
                with anyio.move_on_after(_SERVICES_EXIT_TIMEOUT):
                    await done.wait()
                if not done.is_set():
                    logger.warning(
                        "the client's tasks did not end within %gs of closing",
                        _SERVICES_EXIT_TIMEOUT,
                    )

    @property
    def transport(self) -> str:
        """``"tcp"`` or ``"websocket"``: how this client reaches OpenD."""
        return self._transport_name

    @property
    def closed(self) -> bool:
        """True once the client was closed (by ``aclose()`` or leaving ``async with``)."""
        return self._closed

    @property
    def connected(self) -> bool:
        """True while the link to OpenD is up and the client is open."""
        return not self._closed and not self._conn.closed and self._conn.info is not None

    @property
    def state(self) -> ClientState:
        """Where the client is in its life cycle."""
        return self._state

    def state_changes(self) -> StateWatch:
        """Async iterator of :class:`StateChange`: the current state first, then every change.

        It ends after yielding ``CLOSED``; ``aclose()`` it (or use ``async with``) to stop early.
        """
        watch = StateWatch(self._watchers)
        watch.push(StateChange(self._state, None, self._upstream, time.time()))
        if self._state is not ClientState.CLOSED:
            self._watchers.append(watch)
        return watch

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until the link is up (e.g. after a reconnect), at most ``timeout`` seconds."""
        _check_timeout(timeout)
        with anyio.move_on_after(self.timeout if timeout is None else timeout):
            while self._state is not ClientState.READY:
                if self._state is ClientState.CLOSED:
                    raise ClientClosed("the client is closed")
                await self._ready.wait()
            return
        raise ConnectionLost(f"OpenD link not ready within {timeout or self.timeout:g}s")

    def _set_state(self, state: ClientState, cause: str | None) -> None:
        if state is self._state and cause is None:
            return
        self._state = state
        change = StateChange(state, cause, self._upstream, time.time())
        if state is not ClientState.READY or cause is not None:
            logger.info("state %s%s", state.value, f": {cause}" if cause else "")
        for watch in list(self._watchers):
            watch.push(change)

    @property
    def conn_id(self) -> int:
        """OpenD's id for the current connection (from InitConnect); 0 before connecting."""
        return self._conn.info.conn_id if self._conn.info else 0

    @property
    def server_version(self) -> int:
        """OpenD's version number (from InitConnect)."""
        return self._conn.info.server_version if self._conn.info else 0

    @property
    def login_user_id(self) -> int:
        """The Futu user id OpenD is logged in with (from InitConnect)."""
        return self._conn.info.login_user_id if self._conn.info else 0

    @property
    def keepalive_interval(self) -> int:
        """OpenD's KeepAlive interval in seconds (from InitConnect)."""
        return self._conn.info.keepalive_interval if self._conn.info else 0

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosed("the client is closed")
        if not self._entered:
            raise ConfigurationError(
                "the client is not open yet: use `async with aiofutu.connect(...) as client:`, "
                "or `await client.__aenter__()` (an AsyncExitStack) before using it"
            )

    def _on_push(self, frame: Frame) -> None:
        """Pushes no router takes: OpenD's Notify, and kinds nobody routes."""
        if frame.proto_id == ProtoId.NOTIFY:
            _supervisor.on_notify(self, frame)
        elif logger.isEnabledFor(logging.DEBUG):
            logger.debug("ignored push proto_id=%d", frame.proto_id)

    async def _request(
        self, proto_id: int, message: Any, rtype: type[_protocol.R], timeout: float | None
    ) -> _protocol.R:
        """Send on the current link; while reconnecting, wait (within the timeout) for a new one."""
        frame = await self._request_frame(proto_id, message, timeout)
        return _protocol.decode_response(rtype, frame.body, proto_id, frame.serial)

    async def _request_frame(self, proto_id: int, message: Any, timeout: float | None) -> Frame:
        limit = self.timeout if timeout is None else timeout
        if self._state in _NOT_YET:
            started = time.monotonic()
            with anyio.move_on_after(limit):
                while self._state in _NOT_YET:
                    await self._ready.wait()
            if self._closed:
                raise ClientClosed("the client is closed")
            if self.state is not ClientState.READY:
                raise ConnectionLost(
                    f"the link to OpenD is down and did not come back within {limit:g}s"
                )
            limit = max(limit - (time.monotonic() - started), 0.001)
        if proto_id in self._limited and self._limiter.applies(proto_id, message):
            waited = await self._limiter.acquire(proto_id, limit)
            limit = max(limit - waited, 0.001)
        return await self._conn.request_frame(proto_id, message, limit)

    # -- raw access ------------------------------------------------------------------------

    async def request(
        self,
        proto_id: int,
        message: Any,
        response_type: type[_protocol.R] | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Send any request message and return its parsed Response (retType checked).

        ``response_type`` may be omitted for the protocols aiofutu knows; for others it is needed.
        """
        self._check_open()
        _check_timeout(timeout)
        if isinstance(proto_id, bool) or not isinstance(proto_id, int):
            raise ConfigurationError(f"proto_id must be an int, got {proto_id!r}")
        rtype = response_type or _protocol.RESPONSE_TYPES.get(proto_id)
        if rtype is None:
            raise ConfigurationError(
                f"no Response type known for proto_id={proto_id}; pass response_type="
            )
        return await self._request(proto_id, message, rtype, timeout)

    async def get_global_state(self, *, timeout: float | None = None) -> dict[str, Any]:
        """GetGlobalState (1002): market states, login flags and server version, as a dict."""
        self._check_open()
        _check_timeout(timeout)
        resp = await self._request(
            ProtoId.GET_GLOBAL_STATE,
            _protocol.global_state_request(self.login_user_id),
            get_global_state_pb2.Response,
            timeout,
        )
        return {field.name: value for field, value in resp.s2c.ListFields()}

    # -- push streams ----------------------------------------------------------------------

    def _attacher(self, kind: str, sub_type: SubType | None = None) -> Attacher:
        router = self._routers[kind]
        return router.attacher(self, sub_type or KINDS_BY_NAME[kind].sub_types[0])

    def stats(self) -> dict[str, Any]:
        """Counters for monitoring: link state, traffic, requests, pushes and every stream.

        Traffic counters add up over reconnects; ``request_latency_ms`` summarises the latest
        1024 answered requests.
        """
        conn = self._conn
        latencies = sorted(self._latencies)
        if latencies:
            n = len(latencies)
            latency: dict[str, float | int] = {
                "count": n,
                "p50": round(latencies[n // 2] * 1e3, 3),
                "p99": round(latencies[min(n - 1, (n * 99) // 100)] * 1e3, 3),
                "max": round(latencies[-1] * 1e3, 3),
            }
        else:
            latency = {"count": 0}
        totals = {name: value + getattr(conn, name) for name, value in self._totals.items()}
        routers = self._routers.values()
        return {
            "state": self._state.value,
            "connected": self.connected,
            "upstream": self._upstream,
            "reconnects": self.reconnects,
            **totals,
            "pending_requests": conn.pending_requests,
            "request_latency_ms": latency,
            "rate_limit": self._limiter.stats(),
            **stream_stats(routers),
        }


def connect(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    client_id: str = "aiofutu",
    timeout: float = 12.0,
    connect_timeout: float = 10.0,
    max_body: int = DEFAULT_MAX_BODY,
    reconnect: bool | ReconnectPolicy = False,
    rsa_private_key: str | os.PathLike[str] | bytes | None = None,
    rate_limits: bool | Mapping[int, Limit | tuple[int, float]] = True,
    transport: str = "tcp",
    websocket_key: str | None = None,
    ssl: bool | _ssl.SSLContext | None = None,
    websocket_ping_interval: float = DEFAULT_PING_INTERVAL,
) -> Client:
    """Open a session with OpenD: ``async with aiofutu.connect("127.0.0.1", 11111) as client:``.

    ``timeout`` is the default per-request timeout (each call can pass its own);
    ``connect_timeout`` bounds TCP connect plus InitConnect. ``reconnect=True`` (or a
    :class:`ReconnectPolicy`) reconnects after a drop, restores every subscription and backfills
    open streams so that no tick is lost or repeated (a :class:`Gap` is reported when more ticks
    were missed than OpenD keeps). ``rsa_private_key`` (a PEM path or bytes, the key OpenD is
    configured with) turns on OpenD's encryption: RSA for InitConnect, then AES for every body.
    ``rate_limits`` keeps OpenD's request-rate limits (60 history first pages and 60 snapshots,
    10 market-state requests per 30 s): a request over a limit waits for a slot, within its
    timeout; False turns it off, a mapping ``{proto_id: (count, window_seconds)}`` replaces
    the table.
    ``transport="websocket"`` uses OpenD's WebSocket gateway (``port``: its websocket_port)
    with ``websocket_key``, ``ssl`` (True or an SSLContext: ``wss://``) and a ping every
    ``websocket_ping_interval`` seconds for KeepAlive (docs/websocket.md).
    """
    return Client(
        host,
        port,
        client_id=client_id,
        timeout=timeout,
        connect_timeout=connect_timeout,
        max_body=max_body,
        reconnect=reconnect,
        rsa_private_key=rsa_private_key,
        rate_limits=rate_limits,
        transport=transport,
        websocket_key=websocket_key,
        ssl=ssl,
        websocket_ping_interval=websocket_ping_interval,
    )
