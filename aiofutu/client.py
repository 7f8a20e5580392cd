"""The public client: ``async with aiofutu.connect(...) as client``.

A facade over one :class:`~aiofutu._connection.Connection`: it validates arguments before
anything is sent, keeps the local record of subscriptions (updated only when OpenD confirms),
and owns the push router that feeds ticker streams.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import time
from collections import deque
from collections.abc import Iterable
from enum import Enum
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
from pydantic import BaseModel, ConfigDict

from . import _columns, _protocol
from ._codec import DEFAULT_MAX_BODY, Frame
from ._connection import Connection
from ._crypto import RsaKey
from ._pb import (
    get_global_state_pb2,
    notify_pb2,
    qot_get_sub_info_pb2,
    qot_get_ticker_pb2,
    qot_sub_pb2,
)
from .codes import format_code, parse_code
from .enums import Market, ProtoId, Session, SubType
from .errors import (
    ClientClosed,
    ConfigurationError,
    ConnectError,
    ConnectionLost,
    FutuError,
    OpenDError,
    RequestTimeout,
    SubscriptionRequired,
)
from .frames import ColumnBuffer
from .models import Ticker, tickers_from_columns
from .state import ClientState, ReconnectPolicy, StateChange
from .streams import (
    Gap,
    Overflow,
    TickerFrameStream,
    TickerRouter,
    TickerStream,
    _Bounded,
    _import_polars,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    import polars as pl

    from ._columns import TickColumns

__all__ = ("Client", "SubscriptionInfo", "connect")

logger = logging.getLogger("aiofutu.client")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 11111
MAX_TICKER_NUM = 1000
_TRAFFIC_COUNTERS = ("bytes_in", "bytes_out", "bad_frames", "unmatched_replies")
#: How long closing waits for the client's own tasks to end (they end at once when cancelled).
_SERVICES_EXIT_TIMEOUT = 5.0
#: States in which a request waits (within its timeout) for the link to be up.
_NOT_YET = (ClientState.CONNECTING, ClientState.RECONNECTING)


class SubscriptionInfo(BaseModel):
    """Answer of Qot_GetSubInfo: quota use and what is subscribed, by sub type."""

    model_config = ConfigDict(frozen=True)

    total_used: int
    remain: int
    own_used: int
    #: sub type -> codes, for this connection (or all, with ``all_connections=True``)
    sub_list: dict[SubType, list[str]]


def _as_list(value: object, what: str, expected: str) -> list[Any]:
    if isinstance(value, (str, Enum)):
        return [value]
    if isinstance(value, (bytes, bytearray, dict)) or not isinstance(value, Iterable):
        raise ConfigurationError(f"{what} must be {expected}, got {value!r}")
    return list(value)


def _as_codes(codes: str | Iterable[str], what: str = "codes") -> list[str]:
    items = _as_list(codes, what, "a code string or an iterable of code strings")
    if not items:
        raise ConfigurationError(f"{what} must name at least one security code")
    out: list[str] = []
    for item in items:
        parse_code(item)  # raises InvalidCode
        if item not in out:
            out.append(item)
    return out


def _as_sub_types(sub_types: SubType | str | Iterable[SubType | str]) -> list[SubType]:
    items = _as_list(sub_types, "sub_types", "a SubType or an iterable of SubType")
    if not items:
        raise ConfigurationError("sub_types must name at least one SubType")
    out: list[SubType] = []
    for item in items:
        try:
            st = SubType.coerce(item)
        except ValueError:
            names = ", ".join(m.name for m in SubType if m is not SubType.NONE)
            raise ConfigurationError(f"unknown sub type {item!r}; use one of {names}") from None
        if st is SubType.NONE:
            raise ConfigurationError("SubType.NONE cannot be subscribed")
        if st not in out:
            out.append(st)
    return out


def _ticker_columns(frame: Frame) -> TickColumns:
    """A Qot_GetTicker reply as columns.

    Anything but a plain success goes through the exact schema, which raises the typed error
    (``OpenDError`` for a refusal, ``RemoteProtocolError`` for bytes that do not parse).
    """
    cols = _columns.decode(frame.body, 1)
    if cols is None:
        resp = _protocol.decode_response(
            qot_get_ticker_pb2.Response, frame.body, ProtoId.QOT_GET_TICKER, frame.serial
        )
        s2c = resp.s2c
        sec = s2c.security
        cols = _columns.from_pb(sec.market, sec.code, s2c.name, s2c.tickerList)
    return cols


def _check_timeout(timeout: object, name: str = "timeout") -> None:
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0
    ):
        raise ConfigurationError(f"{name} must be a positive number of seconds, got {timeout!r}")


class _StateWatch:
    """Async iterator of :class:`StateChange` for one watcher (see ``Client.state_changes``)."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._queue: deque[StateChange] = deque(maxlen=256)
        self._event: anyio.Event | None = None
        self._done = False

    def push(self, change: StateChange) -> None:
        self._queue.append(change)
        if self._event is not None:
            self._event.set()

    def __aiter__(self) -> _StateWatch:
        return self

    async def __anext__(self) -> StateChange:
        while not self._queue:
            if self._done:
                raise StopAsyncIteration
            self._event = anyio.Event()
            await self._event.wait()
        change = self._queue.popleft()
        if change.state is ClientState.CLOSED:
            self.close()
        return change

    def close(self) -> None:
        """Stop watching; iteration ends after what is queued."""
        self._done = True
        watchers = self._client._watchers
        if self in watchers:
            watchers.remove(self)
        if self._event is not None:
            self._event.set()

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> _StateWatch:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()


class Client:
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
        self.rsa_key = RsaKey(rsa_private_key) if isinstance(rsa_private_key, bytes) else None
        self._rsa_path: str | None = None
        if rsa_private_key is not None and self.rsa_key is None:
            if not isinstance(rsa_private_key, (str, os.PathLike)):
                raise ConfigurationError(
                    "rsa_private_key must be PEM bytes or the path of a PEM file, "
                    f"got {rsa_private_key!r}"
                )
            self._rsa_path = os.fspath(rsa_private_key)
        self.host = host
        self.port = port
        self.client_id = client_id
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout)
        self.max_body = max_body
        self.policy: ReconnectPolicy | None = reconnect or None
        self.reconnects = 0
        self._latencies: deque[float] = deque(maxlen=1024)
        self._totals = dict.fromkeys(
            ("bytes_in", "bytes_out", "bad_frames", "unmatched_replies"), 0
        )
        self._router = TickerRouter()
        self._ticker_bodies: dict[tuple[int, str, int], bytes] = {}
        self._conn = self._new_connection()
        self._services: anyio.abc.TaskGroup | None = None
        self._services_done: anyio.Event | None = None
        #: the asyncio task hosting ``_services`` (asyncio keeps only weak references to tasks)
        self._services_task: asyncio.Task[None] | None = None
        self._closed = False
        self._entered = False
        self._state = ClientState.CONNECTING
        self._upstream = True
        self._watchers: list[_StateWatch] = []
        self._ready = anyio.Event()
        self._lost = anyio.Event()
        #: code -> sub types OpenD confirmed for this connection
        self._subs: dict[str, set[SubType]] = {}
        #: code -> sub types with push registered
        self._push: dict[str, set[SubType]] = {}
        #: (code, sub type) -> (monotonic time subscribed, extended_time, session wire value)
        self._sub_opts: dict[tuple[str, SubType], tuple[float, bool, int]] = {}

    def _new_connection(self) -> Connection:
        old = getattr(self, "_conn", None)
        if old is not None:  # keep traffic totals across reconnects
            for name in self._totals:
                self._totals[name] += getattr(old, name)
        conn = Connection(request_timeout=self.timeout, max_body=self.max_body)
        conn.latencies = self._latencies
        conn.on_push = self._on_push
        conn.push_handlers[ProtoId.QOT_UPDATE_TICKER] = self._router.dispatch_batch
        conn.on_lost = lambda error: self._on_lost(conn, error)
        conn.after_batch = self._router.flush
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
                self._services.start_soon(self._supervise, name="aiofutu-reconnect")
        except BaseException as exc:
            await self._close(str(exc) if isinstance(exc, FutuError) else "connecting failed")
            raise
        self._set_state(ClientState.READY, None)
        self._ready.set()
        return self

    async def _first_connect(self) -> None:
        """Connect; with ``ReconnectPolicy(first_connect=True)`` keep trying, per the policy."""
        assert self._services is not None
        policy = self.policy
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._conn.open(
                    self._services,
                    self.host,
                    self.port,
                    client_id=self.client_id,
                    connect_timeout=self.connect_timeout,
                    rsa_key=self.rsa_key,
                )
                return
            except ConnectError as exc:
                if policy is None or not policy.first_connect:
                    raise
                if policy.max_attempts is not None and attempt >= policy.max_attempts:
                    raise ConnectError(f"{exc} (gave up after {attempt} attempt(s))") from None
                logger.info("connect attempt %d failed, retrying: %s", attempt, exc)
                self._conn = self._new_connection()
                await anyio.sleep(policy.delay(attempt))

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
            self._router.end_all(error)
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
            self._router.end_all(None)
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

    def state_changes(self) -> _StateWatch:
        """Async iterator of :class:`StateChange`: the current state first, then every change.

        It ends after yielding ``CLOSED``; ``aclose()`` it (or use ``async with``) to stop early.
        """
        watch = _StateWatch(self)
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

    def _on_lost(self, conn: Connection, error: FutuError) -> None:
        if conn is not self._conn or self._closed:
            return
        if self.policy is None:
            self._set_state(ClientState.CLOSED, str(error))
            self._ready.set()
            self._router.end_all(ConnectionLost(str(error)))
            return
        if self._state is not ClientState.RECONNECTING:
            self._ready = anyio.Event()
            self._set_state(ClientState.RECONNECTING, str(error))
        self._router.hold()
        self._lost.set()

    def _on_push(self, frame: Frame) -> None:
        proto_id = frame.proto_id
        if proto_id == ProtoId.QOT_UPDATE_TICKER:
            self._router.dispatch(frame)
        elif proto_id == ProtoId.NOTIFY:
            self._on_notify(frame)
        elif logger.isEnabledFor(logging.DEBUG):
            logger.debug("ignored push proto_id=%d", proto_id)

    def _on_notify(self, frame: Frame) -> None:
        """OpenD's system notifications: its own upstream login, gateway events."""
        resp = notify_pb2.Response()
        try:
            resp.ParseFromString(frame.body)
        except Exception as exc:
            logger.warning("dropped a Notify push that does not parse: %s", exc)
            return
        s2c = resp.s2c
        if s2c.HasField("connectStatus"):
            up = s2c.connectStatus.qotLogined
            if up != self._upstream:
                self._upstream = up
                cause = (
                    "OpenD regained its quote server connection"
                    if up
                    else "OpenD lost its quote server connection"
                )
                logger.warning(cause)
                self._set_state(self._state, cause)
                if up and self._services is not None and not self._closed:
                    self._services.start_soon(self._resubscribe, name="aiofutu-resubscribe")
        if s2c.HasField("event"):
            kind = s2c.event.eventType
            try:
                name = notify_pb2.GtwEventType.Name(kind).removeprefix("GtwEventType_")
            except ValueError:
                name = str(kind)
            cause = f"OpenD event {name}: {s2c.event.desc}"
            logger.warning(cause)
            self._set_state(self._state, cause)
        if s2c.HasField("programStatus"):
            logger.info("OpenD program status: %s", s2c.programStatus.programStatus.type)

    # -- reconnect -------------------------------------------------------------------------

    async def _supervise(self) -> None:
        """Reconnect after every loss, restore subscriptions and backfill streams."""
        policy = self.policy
        assert policy is not None
        assert self._services is not None
        while not self._closed:
            await self._lost.wait()
            attempt = 0
            while not self._closed:
                attempt += 1
                if policy.max_attempts is not None and attempt > policy.max_attempts:
                    error = ConnectionLost(
                        f"gave up reconnecting to OpenD at {self.host}:{self.port} "
                        f"after {policy.max_attempts} attempt(s)"
                    )
                    self._set_state(ClientState.CLOSED, str(error))
                    self._router.release()
                    self._router.end_all(error)
                    self._ready.set()
                    return
                await anyio.sleep(policy.delay(attempt))
                conn = self._new_connection()
                try:
                    await conn.open(
                        self._services,
                        self.host,
                        self.port,
                        client_id=self.client_id,
                        connect_timeout=self.connect_timeout,
                        rsa_key=self.rsa_key,
                    )
                except ConnectError as exc:
                    logger.info("reconnect attempt %d failed: %s", attempt, exc)
                    continue
                self._conn = conn
                self._lost = anyio.Event()
                try:
                    await self._restore(conn, backfill=True)
                except (ConnectionLost, RequestTimeout, ClientClosed) as exc:
                    logger.info("link lost again while restoring: %s", exc)
                    await conn.close()
                    continue
                if conn.closed:
                    continue
                self.reconnects += 1
                self._set_state(ClientState.READY, f"reconnected (attempt {attempt})")
                self._ready.set()
                break

    async def _resubscribe(self) -> None:
        try:
            await self._restore(self._conn, backfill=False)
        except FutuError as exc:
            logger.warning("resubscribing after OpenD's upstream returned failed: %s", exc)

    async def _restore(self, conn: Connection, *, backfill: bool) -> None:
        """Re-issue every subscription (at most 100 codes per Qot_Sub), then backfill streams."""
        groups: dict[tuple[SubType, bool, bool, int], list[str]] = {}
        for code, types in self._subs.items():
            pushed = self._push.get(code, set())
            for t in types:
                _, ext, sess = self._sub_opts.get((code, t), (0.0, False, 0))
                groups.setdefault((t, t in pushed, ext, sess), []).append(code)
        for (sub_type, push, ext, sess), codes in groups.items():
            for i in range(0, len(codes), 100):
                batch = codes[i : i + 100]
                req = _protocol.sub_request(
                    [(m.wire, c) for m, c in map(parse_code, batch)],
                    [sub_type.wire],
                    subscribe=True,
                    register_push=push,
                    first_push=False,
                    extended_time=ext,
                    session=sess,
                )
                try:
                    await conn.request(ProtoId.QOT_SUB, req, qot_sub_pb2.Response)
                except OpenDError as exc:
                    logger.error(
                        "OpenD refused to restore %s for %s: %s", sub_type.name, batch, exc
                    )
                    self._forget(batch, [sub_type])
                    failed = {(m.wire, c) for m, c in map(parse_code, batch)}
                    self._router.fail(failed, exc)
        if backfill:
            for market, local, last in self._router.streamed_securities():
                code = format_code(market, local)
                if last < 0 or SubType.TICKER not in self._subs.get(code, ()):
                    continue
                frame = await conn.request_frame(
                    ProtoId.QOT_GET_TICKER,
                    _protocol.get_ticker_request(market, local, MAX_TICKER_NUM),
                    None,
                )
                self._router.backfill(_ticker_columns(frame), MAX_TICKER_NUM)
        self._router.release()

    def _forget(self, codes: Iterable[str], types: Iterable[SubType]) -> None:
        types = list(types)
        for code in codes:
            for record in (self._subs, self._push):
                held = record.get(code)
                if held is not None:
                    held.difference_update(types)
                    if not held:
                        del record[code]
            for t in types:
                self._sub_opts.pop((code, t), None)

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

    # -- subscriptions ---------------------------------------------------------------------

    async def subscribe(
        self,
        codes: str | Iterable[str],
        sub_types: SubType | str | Iterable[SubType | str],
        *,
        subscribe_push: bool = True,
        is_first_push: bool = True,
        extended_time: bool = False,
        session: Session | str = Session.NONE,
        timeout: float | None = None,
    ) -> None:
        """Subscribe ``codes`` to ``sub_types`` (each pair uses one unit of OpenD's quota).

        OpenD only lets a subscription be cancelled one minute after it was made.
        """
        self._check_open()
        code_list = _as_codes(codes)
        types = _as_sub_types(sub_types)
        try:
            sess = Session.coerce(session)
        except ValueError:
            raise ConfigurationError(f"unknown session {session!r}") from None
        _check_timeout(timeout)
        securities = [(m.wire, c) for m, c in map(parse_code, code_list)]
        req = _protocol.sub_request(
            securities,
            [t.wire for t in types],
            subscribe=True,
            register_push=bool(subscribe_push),
            first_push=bool(is_first_push),
            extended_time=bool(extended_time),
            session=sess.wire,
        )
        await self._request(ProtoId.QOT_SUB, req, qot_sub_pb2.Response, timeout)
        now = time.monotonic()
        for code in code_list:
            self._subs.setdefault(code, set()).update(types)
            if subscribe_push:
                self._push.setdefault(code, set()).update(types)
            for t in types:
                since = self._sub_opts.get((code, t), (now, False, 0))[0]
                self._sub_opts[(code, t)] = (since, bool(extended_time), sess.wire)

    async def unsubscribe(
        self,
        codes: str | Iterable[str],
        sub_types: SubType | str | Iterable[SubType | str],
        *,
        timeout: float | None = None,
    ) -> None:
        """Cancel subscriptions (OpenD refuses it for ones younger than a minute)."""
        self._check_open()
        code_list = _as_codes(codes)
        types = _as_sub_types(sub_types)
        _check_timeout(timeout)
        securities = [(m.wire, c) for m, c in map(parse_code, code_list)]
        req = _protocol.sub_request(
            securities,
            [t.wire for t in types],
            subscribe=False,
            register_push=False,
            first_push=False,
        )
        await self._request(ProtoId.QOT_SUB, req, qot_sub_pb2.Response, timeout)
        self._forget(code_list, types)

    async def unsubscribe_all(self, *, timeout: float | None = None) -> None:
        """Cancel every subscription of this connection."""
        self._check_open()
        _check_timeout(timeout)
        await self._request(
            ProtoId.QOT_SUB, _protocol.unsub_all_request(), qot_sub_pb2.Response, timeout
        )
        self._subs.clear()
        self._push.clear()
        self._sub_opts.clear()

    def subscriptions(self) -> dict[str, frozenset[SubType]]:
        """This client's subscriptions as OpenD confirmed them (no request is sent)."""
        return {code: frozenset(types) for code, types in self._subs.items()}

    async def query_subscription(
        self, *, all_connections: bool = False, timeout: float | None = None
    ) -> SubscriptionInfo:
        """Ask OpenD what is subscribed (Qot_GetSubInfo) and how much quota is left."""
        self._check_open()
        _check_timeout(timeout)
        resp = await self._request(
            ProtoId.QOT_GET_SUB_INFO,
            _protocol.sub_info_request(bool(all_connections)),
            qot_get_sub_info_pb2.Response,
            timeout,
        )
        s2c = resp.s2c
        sub_list: dict[SubType, list[str]] = {}
        own_used = 0
        wire_to_sub = {t.wire: t for t in SubType}
        for conn in s2c.connSubInfoList:
            if conn.isOwnConnData:
                own_used += conn.usedQuota
            for info in conn.subInfoList:
                st = wire_to_sub.get(info.subType, SubType.NONE)
                codes = sub_list.setdefault(st, [])
                for sec in info.securityList:
                    code = format_code(sec.market, sec.code)
                    if code not in codes:
                        codes.append(code)
        return SubscriptionInfo(
            total_used=s2c.totalUsedQuota,
            remain=s2c.remainQuota,
            own_used=own_used,
            sub_list=sub_list,
        )

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

    # -- tickers ---------------------------------------------------------------------------

    def _ticker_request(self, code: str, num: int) -> tuple[Market, str, Any]:
        self._check_open()
        market, local = parse_code(code)
        if isinstance(num, bool) or not isinstance(num, int):
            raise ConfigurationError(f"num must be an int in 1..{MAX_TICKER_NUM}, got {num!r}")
        if not 1 <= num <= MAX_TICKER_NUM:
            raise ConfigurationError(
                f"num must be in 1..{MAX_TICKER_NUM} (OpenD keeps the latest {MAX_TICKER_NUM} "
                f"ticks), got {num}"
            )
        if SubType.TICKER not in self._subs.get(code, ()):
            raise SubscriptionRequired(code, SubType.TICKER.name)
        return market, local, self._ticker_body(market.wire, local, num)

    def _ticker_body(self, market: int, local: str, num: int) -> bytes:
        """The encoded Qot_GetTicker request: the same bytes every time, so encoded once."""
        key = (market, local, num)
        body = self._ticker_bodies.get(key)
        if body is None:
            if len(self._ticker_bodies) >= 1024:
                self._ticker_bodies.clear()
            req = _protocol.get_ticker_request(market, local, num)
            body = self._ticker_bodies[key] = _protocol.encode_message(req)
        return body

    async def _get_ticker(self, code: str, num: int, timeout: float | None) -> TickColumns:
        _market, _local, req = self._ticker_request(code, num)
        _check_timeout(timeout)
        frame = await self._request_frame(ProtoId.QOT_GET_TICKER, req, timeout)
        return _ticker_columns(frame)

    async def get_rt_ticker(
        self, code: str, num: int = 500, *, timeout: float | None = None
    ) -> list[Ticker]:
        """The latest ``num`` (1..1000) ticks of a TICKER-subscribed security, oldest first."""
        cols = await self._get_ticker(code, num, timeout)
        out: list[Ticker] = []
        tickers_from_columns(format_code(cols.market, cols.code), cols, out)
        return out

    async def get_rt_ticker_frame(
        self, code: str, num: int = 500, *, timeout: float | None = None
    ) -> pl.DataFrame:
        """Like :meth:`get_rt_ticker`, as a polars DataFrame with the SDK's columns.

        Built straight from the decoded columns (no model per tick).
        """
        await _import_polars()
        cols = await self._get_ticker(code, num, timeout)
        buf = ColumnBuffer()
        buf.add(format_code(cols.market, cols.code), cols)
        return buf.to_frame()

    # -- push streams ----------------------------------------------------------------------

    def ticker_stream(
        self,
        *codes: str,
        buffer: int = 10_000,
        overflow: Overflow = "raise",
        on_gap: Callable[[Gap], None] | None = None,
        is_first_push: bool = True,
    ) -> TickerStream:
        """An async iterator of pushed :class:`Ticker` for ``codes``.

        Use ``async with client.ticker_stream("HK.00700") as ticks: async for t in ticks: ...``.
        Entering subscribes TICKER with push for codes not yet subscribed that way (with
        ``is_first_push``, OpenD first re-sends the latest tick of each code). Leaving only
        detaches the stream: the subscription stays, because OpenD refuses to cancel one younger
        than a minute; call :meth:`unsubscribe` yourself when you want it gone.
        """
        self._check_open()
        stream = TickerStream(
            self, tuple(_as_codes(codes)), buffer=buffer, overflow=overflow, on_gap=on_gap
        )
        stream.first_push = bool(is_first_push)
        return stream

    def ticker_frames(
        self,
        codes: str | Iterable[str],
        *,
        max_rows: int = 10_000,
        max_latency: float = 0.1,
        buffer: int = 1_000_000,
        overflow: Overflow = "raise",
        on_gap: Callable[[Gap], None] | None = None,
        is_first_push: bool = False,
    ) -> TickerFrameStream:
        """An async iterator of polars DataFrames of pushed ticks (the fast path for analytics)."""
        self._check_open()
        frames = TickerFrameStream(
            self,
            tuple(_as_codes(codes)),
            max_rows=max_rows,
            max_latency=max_latency,
            buffer=buffer,
            overflow=overflow,
            on_gap=on_gap,
        )
        frames.first_push = bool(is_first_push)
        return frames

    async def _attach_stream(self, stream: _Bounded) -> None:
        self._check_open()
        missing = [c for c in stream.codes if SubType.TICKER not in self._push.get(c, ())]
        # Route first, so that the first push (sent with the Qot_Sub reply) is not missed.
        self._router.attach(stream)
        try:
            if missing:
                await self.subscribe(
                    missing, [SubType.TICKER], subscribe_push=True, is_first_push=stream.first_push
                )
            if self._conn.closed and self.policy is None:
                raise ConnectionLost("connection to OpenD is lost")
        except BaseException:
            self._router.detach(stream)
            raise

    def _detach_stream(self, stream: _Bounded) -> None:
        self._router.detach(stream)

    def stats(self) -> dict[str, Any]:
        """Counters for monitoring: link state, traffic, requests, pushes and every stream.

        Traffic counters add up over reconnects; ``request_latency_ms`` summarises the latest
        1024 answered requests.
        """
        conn = self._conn
        router = self._router
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
        return {
            "state": self._state.value,
            "connected": self.connected,
            "upstream": self._upstream,
            "reconnects": self.reconnects,
            **totals,
            "pending_requests": conn.pending_requests,
            "request_latency_ms": latency,
            "unrouted_pushes": router.unrouted,
            "duplicate_ticks": router.duplicates,
            "bad_pushes": router.bad_pushes,
            "last_push": dict(router.last_push),
            "streams": [
                {
                    "codes": list(s.codes),
                    "kind": "frames" if isinstance(s, TickerFrameStream) else "ticks",
                    "received": s.received,
                    "dropped": s.dropped,
                    "pending": s.pending,
                    "gaps": len(s.gaps),
                }
                for s in router.sinks()
                if isinstance(s, (TickerStream, TickerFrameStream))
            ],
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
) -> Client:
    """Open a session with OpenD: ``async with aiofutu.connect("127.0.0.1", 11111) as client:``.

    ``timeout`` is the default per-request timeout (each call can pass its own);
    ``connect_timeout`` bounds TCP connect plus InitConnect. ``reconnect=True`` (or a
    :class:`ReconnectPolicy`) reconnects after a drop, restores every subscription and backfills
    open streams so that no tick is lost or repeated (a :class:`Gap` is reported when more ticks
    were missed than OpenD keeps). ``rsa_private_key`` (a PEM path or bytes, the key OpenD is
    configured with) turns on OpenD's encryption: RSA for InitConnect, then AES for every body.
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
    )
