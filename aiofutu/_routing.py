"""What every quote kind's push router shares: routes, sinks, hold/release, flush, the hub.

A kind's router (``quotes/_ticker_router.py`` for tickers) adds only its hot path: how a push is
parsed and grouped, and what ``_deliver`` does with it. Everything here is the cold path: it
runs when a stream attaches or leaves, once per read chunk (``flush``), or around a reconnect.

:class:`PushHub` is what the connection sees: push handlers by protocol id (each a router's
bound ``dispatch_batch``, called with that protocol's frames of one read chunk, no hop between)
and one after-chunk hook that flushes only the routers whose pushes were in that chunk.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

from .codes import format_code, parse_code
from .errors import ConnectionLost

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    from ._codec import Frame
    from ._kinds import QuoteKind
    from .enums import SubType
    from .errors import FutuError
    from .subscriptions import SubscriptionBook

    #: a request on the current link: (proto_id, message, timeout) -> the reply frame
    Fetch = Callable[[int, Any, float | None], Awaitable[Frame]]

__all__ = (
    "Attacher",
    "KindAttacher",
    "KindRouter",
    "PushHub",
    "Route",
    "Sink",
    "stream_stats",
)

logger = logging.getLogger("aiofutu.routing")

_now = time.time


class Sink:
    """What a router needs from a stream: a place to put data and a way to end it.

    ``_put_models`` takes models built once for all model streams of a security; ``_put_raw``
    takes the decoded push itself (columns, for frame streams). A sink implements the one its
    ``wants_models`` says.
    """

    codes: tuple[str, ...]
    wants_models: bool
    overflow: str
    #: models built during the current read chunk, handed over in one piece by ``flush``
    staged: list[Any]

    def _put_models(self, items: list[Any]) -> None:
        raise NotImplementedError

    def _put_raw(self, code: str, data: Any) -> None:
        raise NotImplementedError

    def _put_gap(self, gap: Any) -> None:
        raise NotImplementedError

    def _end(self, error: FutuError | None) -> None:
        raise NotImplementedError

    def _is_full(self) -> bool:
        raise NotImplementedError

    async def _wait_space(self) -> None:
        raise NotImplementedError


class Attacher(Protocol):
    """The one thing a stream asks of its client: route me (subscribing what is missing)."""

    async def attach(self, sink: Sink) -> None: ...

    def detach(self, sink: Sink) -> None: ...


class _Subscriber(Protocol):
    """The client, as a :class:`KindAttacher` sees it."""

    policy: Any
    _book: SubscriptionBook
    _conn: Any

    def _check_open(self) -> None: ...

    async def subscribe(
        self,
        codes: list[str],
        sub_types: list[SubType],
        *,
        subscribe_push: bool,
        is_first_push: bool,
    ) -> None: ...


class KindAttacher:
    """A stream's only way back to its client: route it (subscribing what is missing)."""

    __slots__ = ("_client", "_router", "_sub_type")

    def __init__(self, client: _Subscriber, sub_type: SubType, router: KindRouter) -> None:
        self._client = client
        self._sub_type = sub_type
        self._router = router

    async def attach(self, sink: Sink) -> None:
        client = self._client
        client._check_open()
        missing = client._book.without_push(sink.codes, self._sub_type)
        # Route first, so that the first push (sent with the Qot_Sub reply) is not missed.
        self._router.attach(sink)
        try:
            if missing:
                await client.subscribe(
                    missing,
                    [self._sub_type],
                    subscribe_push=True,
                    is_first_push=getattr(sink, "first_push", True),
                )
            if client._conn.closed and client.policy is None:
                raise ConnectionLost("connection to OpenD is lost")
        except BaseException:
            self._router.detach(sink)
            raise

    def detach(self, sink: Sink) -> None:
        self._router.detach(sink)


class Route:
    """Per-security dispatch state of one kind: its streams, held pushes, dirtiness."""

    __slots__ = (
        "code",
        "dirty",
        "held",
        "last_push",
        "local",
        "market",
        "model_sinks",
        "raw_sinks",
    )

    def __init__(self, market: int, code: str) -> None:
        self.market = market
        self.local = code
        self.dirty = False
        self.code = format_code(market, code)
        self.last_push = 0.0
        self.model_sinks: list[Sink] = []
        self.raw_sinks: list[Sink] = []
        #: pushes held back while a reconnect restores this security
        self.held: list[Any] | None = None

    def reattached(self) -> None:
        """A stream attached after none watched this security: forget continuity state."""


class KindRouter:
    """The cold path of a push router: routes by (market, code), attach/detach, hold/release."""

    #: protocol id of the pushes this router takes (set by each kind)
    push_proto_id: int = 0

    def __init__(self, kind: QuoteKind | None = None) -> None:
        #: the row of ``_kinds.KINDS`` this router serves
        self.kind = kind
        self._routes: dict[tuple[int, str], Any] = {}
        self._block_sinks: set[int] = set()
        self._multi_code_sinks: set[int] = set()
        self._dirty_sinks: list[Sink] = []
        self._dirty_routes: list[Any] = []
        self.unrouted = 0
        self.bad_pushes = 0

    def _new_route(self, market: int, code: str) -> Route:
        return Route(market, code)

    def attacher(self, client: _Subscriber, sub_type: SubType) -> Attacher:
        """What a stream of this kind attaches through (subscribing ``sub_type``)."""
        return KindAttacher(client, sub_type, self)

    def serves(self, sub_type: SubType | None) -> bool:
        """Whether ``sub_type`` is one of this router's kind (``None``, or no kind: yes)."""
        return sub_type is None or self.kind is None or sub_type in self.kind.sub_types

    def _deliver(self, route: Any, data: Any) -> None:
        raise NotImplementedError

    def dispatch_batch(self, frames: list[Frame]) -> None:
        raise NotImplementedError

    def attach(self, sink: Sink) -> None:
        for code in sink.codes:
            market, local = parse_code(code)
            key = (market.wire, local)
            route = self._routes.get(key)
            if route is None:
                route = self._routes[key] = self._new_route(market.wire, local)
            elif not (route.model_sinks or route.raw_sinks):
                # pushes went unwatched since the last stream left: no continuity to claim
                route.reattached()
            (route.model_sinks if sink.wants_models else route.raw_sinks).append(sink)
        if getattr(sink, "overflow", None) == "block":
            self._block_sinks.add(id(sink))
        if len(sink.codes) > 1:
            self._multi_code_sinks.add(id(sink))

    def detach(self, sink: Sink) -> None:
        for route in self._routes.values():
            for sinks in (route.model_sinks, route.raw_sinks):
                if sink in sinks:
                    sinks.remove(sink)
        self._block_sinks.discard(id(sink))
        self._multi_code_sinks.discard(id(sink))

    def sinks(self) -> Iterable[Sink]:
        seen: set[int] = set()
        for route in self._routes.values():
            for s in (*route.model_sinks, *route.raw_sinks):
                if id(s) not in seen:
                    seen.add(id(s))
                    yield s

    @property
    def last_push(self) -> dict[str, float]:
        """Wall-clock time of the last push per code."""
        return {r.code: r.last_push for r in self._routes.values() if r.last_push}

    def end_all(self, error: FutuError | None) -> None:
        for sink in list(self.sinks()):
            sink._end(error)

    async def restore(self, fetch: Fetch, book: SubscriptionBook) -> None:
        """Get the streams back in step after a reconnect, before :meth:`release`.

        ``fetch(proto_id, message, timeout)`` requests on the new link. The default does
        nothing: a ``"first_push"`` kind was re-subscribed with OpenD's first push, which
        re-sends the current state. A ``"backfill"`` kind fetches what its streams missed.
        """

    def streamed_routes(self) -> list[Any]:
        """The routes of every security with an open stream."""
        return [r for r in self._routes.values() if r.model_sinks or r.raw_sinks]

    def flush(self) -> Any:
        """Hand staged models to their streams; the reader calls this after every read chunk.

        Returns an awaitable when an ``overflow="block"`` stream is full, so that the reader
        stops reading until its consumer catches up.
        """
        if self._dirty_routes:
            now = _now()
            for route in self._dirty_routes:
                route.dirty = False
                route.last_push = now
            self._dirty_routes.clear()
        dirty = self._dirty_sinks
        if dirty:
            self._dirty_sinks = []
            for sink in dirty:
                batch = sink.staged
                sink.staged = []
                sink._put_models(batch)
        if self._block_sinks:
            blocked = [
                sink for sink in self.sinks() if id(sink) in self._block_sinks and sink._is_full()
            ]
            if blocked:
                return _wait_all(blocked)
        return None

    def hold(self) -> None:
        """Hold back live pushes of streamed securities until :meth:`release` (after restore)."""
        for route in self._routes.values():
            if (route.model_sinks or route.raw_sinks) and route.held is None:
                route.held = []

    def release(self) -> None:
        """Deliver the pushes held during a reconnect, in arrival order."""
        for route in self._routes.values():
            held = route.held
            if held is None:
                continue
            route.held = None
            for data in held:
                self._deliver(route, data)
        self.flush()

    def fail(
        self, codes: set[tuple[int, str]], error: FutuError, sub_type: SubType | None = None
    ) -> None:
        """End the streams of ``codes`` with ``error`` (a subscription OpenD refused to restore).

        With ``sub_type``, only a router of that sub type's kind ends its streams.
        """
        if not self.serves(sub_type):
            return
        for key in codes:
            route = self._routes.get(key)
            if route is not None:
                for sink in (*route.model_sinks, *route.raw_sinks):
                    sink._end(error)


def stream_stats(routers: Iterable[KindRouter]) -> dict[str, Any]:
    """The push counters of ``Client.stats()``, summed over the routers, and every stream."""
    routers = list(routers)
    last_push: dict[str, float] = {}
    for router in routers:
        last_push.update(router.last_push)
    return {
        "unrouted_pushes": sum(r.unrouted for r in routers),
        "duplicate_ticks": sum(getattr(r, "duplicates", 0) for r in routers),
        "sequence_collisions": sum(getattr(r, "collisions", 0) for r in routers),
        "bad_pushes": sum(r.bad_pushes for r in routers),
        "last_push": last_push,
        "streams": [
            {
                "codes": list(s.codes),
                "kind": getattr(s, "kind", None) or ("ticks" if s.wants_models else "frames"),
                "received": getattr(s, "received", 0),
                "dropped": getattr(s, "dropped", 0),
                "conflated": getattr(s, "conflated", 0),
                "pending": getattr(s, "pending", 0),
                "gaps": len(getattr(s, "gaps", ())),
            }
            for router in routers
            for s in router.sinks()
        ],
    }


async def _wait_all(sinks: list[Sink]) -> None:
    for sink in sinks:
        await sink._wait_space()


class PushHub:
    """Push handlers by protocol id for any number of routers, and the after-chunk hook.

    ``handlers`` is the dict the connection's reader looks frames up in; a router's entry is its
    bound ``dispatch_batch``. ``on_push`` takes the other pushes (Notify, kinds nobody routes).
    """

    def __init__(self, on_push: Callable[[Frame], None] | None = None) -> None:
        self.handlers: dict[int, Callable[[list[Frame]], None]] = {}
        self.on_push = on_push
        self._routers: dict[int, KindRouter] = {}

    def add(self, router: KindRouter) -> None:
        """Route ``router.push_proto_id`` pushes to ``router``."""
        proto_id = router.push_proto_id
        self.handlers[proto_id] = router.dispatch_batch
        self._routers[proto_id] = router

    @property
    def routers(self) -> list[KindRouter]:
        return list(self._routers.values())

    def after_chunk(self, seen: Iterable[int]) -> Awaitable[None] | None:
        """Flush the routers whose pushes were in this chunk (``seen``: their protocol ids).

        Returns what a full ``overflow="block"`` stream asks the reader to wait on, if any.
        """
        routers = self._routers
        waits: list[Awaitable[None]] | None = None
        for proto_id in seen:
            router = routers.get(proto_id)
            if router is None:
                continue
            wait = router.flush()
            if wait is not None:
                if waits is None:
                    waits = [wait]
                else:
                    waits.append(wait)
        if waits is None:
            return None
        return waits[0] if len(waits) == 1 else _gather(waits)

    def hold(self) -> None:
        for router in self._routers.values():
            router.hold()

    def release(self) -> None:
        for router in self._routers.values():
            router.release()

    def end_all(self, error: FutuError | None) -> None:
        for router in self._routers.values():
            router.end_all(error)


async def _gather(waits: list[Awaitable[None]]) -> None:
    for wait in waits:
        await wait
