"""Keeping the link up: first connect, reconnect, restore, and OpenD's upstream notifications.

Restoring never branches on the quote kind. It replays the subscription book (one Qot_Sub per
batch of at most 100 codes that share a sub type and options), then asks each router how to
get its streams back in step (a kind whose ``restore`` is ``"backfill"`` fetches what was
missed, e.g. the ticker's Qot_GetTicker; a ``"first_push"`` kind is re-subscribed with OpenD's
first push, which re-sends the current state), and releases the pushes held meanwhile.

The functions work on the client through :class:`Host`, the few attributes they share with it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

import anyio
import anyio.abc

from . import _protocol
from ._kinds import KINDS_BY_SUB_TYPE
from ._pb import notify_pb2, qot_sub_pb2
from .codes import parse_code
from .enums import ProtoId
from .errors import (
    ClientClosed,
    ConnectError,
    ConnectionLost,
    FutuError,
    OpenDError,
    RequestTimeout,
)
from .state import ClientState

if TYPE_CHECKING:
    from ._codec import Frame
    from ._connection import Connection
    from ._crypto import RsaKey
    from ._routing import PushHub
    from .state import ReconnectPolicy
    from .subscriptions import SubscriptionBook

__all__ = (
    "Host",
    "first_connect",
    "on_lost",
    "on_notify",
    "restore",
    "resubscribe",
    "supervise",
)

logger = logging.getLogger("aiofutu.client")


class Host(Protocol):
    """What the supervisor reads and sets on the client."""

    host: str
    port: int
    client_id: str
    connect_timeout: float
    rsa_key: RsaKey | None
    policy: ReconnectPolicy | None
    reconnects: int
    _conn: Connection
    _closed: bool
    _state: ClientState
    _upstream: bool
    _ready: anyio.Event
    _lost: anyio.Event
    _services: anyio.abc.TaskGroup | None
    _book: SubscriptionBook
    _pushes: PushHub

    def _new_connection(self) -> Connection: ...

    def _set_state(self, state: ClientState, cause: str | None) -> None: ...


async def _open(host: Host, conn: Connection) -> None:
    assert host._services is not None
    await conn.open(
        host._services,
        host.host,
        host.port,
        client_id=host.client_id,
        connect_timeout=host.connect_timeout,
        rsa_key=host.rsa_key,
    )


async def first_connect(host: Host) -> None:
    """Connect; with ``ReconnectPolicy(first_connect=True)`` keep trying, per the policy."""
    policy = host.policy
    attempt = 0
    while True:
        attempt += 1
        try:
            await _open(host, host._conn)
            return
        except ConnectError as exc:
            if policy is None or not policy.first_connect:
                raise
            if policy.max_attempts is not None and attempt >= policy.max_attempts:
                raise ConnectError(f"{exc} (gave up after {attempt} attempt(s))") from None
            logger.info("connect attempt %d failed, retrying: %s", attempt, exc)
            host._conn = host._new_connection()
            await anyio.sleep(policy.delay(attempt))


def on_lost(host: Host, conn: Connection, error: FutuError) -> None:
    """The link dropped: end the streams, or hold them and wake :func:`supervise`."""
    if conn is not host._conn or host._closed:
        return
    if host.policy is None:
        host._set_state(ClientState.CLOSED, str(error))
        host._ready.set()
        host._pushes.end_all(ConnectionLost(str(error)))
        return
    if host._state is not ClientState.RECONNECTING:
        host._ready = anyio.Event()
        host._set_state(ClientState.RECONNECTING, str(error))
    host._pushes.hold()
    host._lost.set()


async def supervise(host: Host) -> None:
    """Reconnect after every loss, restore subscriptions and backfill streams."""
    policy = host.policy
    assert policy is not None
    while not host._closed:
        await host._lost.wait()
        attempt = 0
        while not host._closed:
            attempt += 1
            if policy.max_attempts is not None and attempt > policy.max_attempts:
                error = ConnectionLost(
                    f"gave up reconnecting to OpenD at {host.host}:{host.port} "
                    f"after {policy.max_attempts} attempt(s)"
                )
                host._set_state(ClientState.CLOSED, str(error))
                host._pushes.release()
                host._pushes.end_all(error)
                host._ready.set()
                return
            await anyio.sleep(policy.delay(attempt))
            conn = host._new_connection()
            try:
                await _open(host, conn)
            except ConnectError as exc:
                logger.info("reconnect attempt %d failed: %s", attempt, exc)
                continue
            host._conn = conn
            host._lost = anyio.Event()
            try:
                await restore(host, conn, backfill=True)
            except (ConnectionLost, RequestTimeout, ClientClosed) as exc:
                logger.info("link lost again while restoring: %s", exc)
                await conn.close()
                continue
            if conn.closed:
                continue
            host.reconnects += 1
            host._set_state(ClientState.READY, f"reconnected (attempt {attempt})")
            host._ready.set()
            break


async def restore(host: Host, conn: Connection, *, backfill: bool) -> None:
    """Re-issue every subscription from the book, then let each kind restore its streams."""
    book = host._book
    for batch in book.restore_plan():
        kind = KINDS_BY_SUB_TYPE.get(batch.sub_type)
        first_push = batch.push and kind is not None and kind.restore == "first_push"
        req = _protocol.sub_request(
            [(m.wire, c) for m, c in map(parse_code, batch.codes)],
            [batch.sub_type.wire],
            subscribe=True,
            register_push=batch.push,
            first_push=first_push,
            extended_time=batch.extended_time,
            session=batch.session,
            rehab_types=batch.rehab_types,
        )
        try:
            await conn.request(ProtoId.QOT_SUB, req, qot_sub_pb2.Response)
        except OpenDError as exc:
            logger.error(
                "OpenD refused to restore %s for %s: %s", batch.sub_type.name, batch.codes, exc
            )
            book.forget(batch.codes, [batch.sub_type])
            failed = {(m.wire, c) for m, c in map(parse_code, batch.codes)}
            for router in host._pushes.routers:
                router.fail(failed, exc, batch.sub_type)
    if backfill:
        for router in host._pushes.routers:
            await router.restore(conn.request_frame, book)
    host._pushes.release()


async def resubscribe(host: Host) -> None:
    """OpenD's own upstream came back: re-issue the subscriptions (no backfill)."""
    try:
        await restore(host, host._conn, backfill=False)
    except FutuError as exc:
        logger.warning("resubscribing after OpenD's upstream returned failed: %s", exc)


def on_notify(host: Host, frame: Frame) -> None:
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
        if up != host._upstream:
            host._upstream = up
            cause = (
                "OpenD regained its quote server connection"
                if up
                else "OpenD lost its quote server connection"
            )
            logger.warning(cause)
            host._set_state(host._state, cause)
            if up and host._services is not None and not host._closed:
                host._services.start_soon(resubscribe, host, name="aiofutu-resubscribe")
    if s2c.HasField("event"):
        kind = s2c.event.eventType
        try:
            name = notify_pb2.GtwEventType.Name(kind).removeprefix("GtwEventType_")
        except ValueError:
            name = str(kind)
        cause = f"OpenD event {name}: {s2c.event.desc}"
        logger.warning(cause)
        host._set_state(host._state, cause)
    if s2c.HasField("programStatus"):
        logger.info("OpenD program status: %s", s2c.programStatus.programStatus.type)
