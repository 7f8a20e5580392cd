"""One push router for every state kind: basic quotes (3005), order books (3013), brokers (3015).

A state push carries the whole current state of a security (a quote record, both sides of a
book, both sides of a broker queue), never a delta, and no sequence number: there is nothing to
dedupe and no gap to detect. So the router only parses each push, splits it per security (a
3005 push may hold several), and hands every stream of that security the same
:class:`~aiofutu.latest.StateUpdate`; the model is built when a consumer takes it, once for all
of them, and never for an update that conflation replaced.

Routes are keyed ``(market, code, variant)``; the variant is the index of the subscription's
sub type in the kind's row (order books: 0 ``ORDER_BOOK``, 1 ``ORDER_BOOK_ODD``, which is also
the push's ``orderBookType``). The per-kind part is one entry of :data:`_SPLIT` (how a parsed
push splits into securities) and :data:`_DECODE` (the model of one). Bad pushes (unparsable,
a refusal, a missing required field) are logged and counted in ``bad_pushes``; a push for a
security nobody streams is counted in ``unrouted``. Neither ever reaches the reader's caller.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .._routing import KindAttacher, KindRouter, Route
from ..codes import parse_code
from ..errors import ConnectionLost
from ..latest import StateUpdate
from ._book_columns import BookView, book_from_view
from ._broker_columns import BrokerView, broker_from_view
from .basic import quote_from_pb

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from .._codec import Frame
    from .._kinds import QuoteKind
    from .._routing import Sink, _Subscriber
    from ..enums import SubType
    from ..errors import FutuError

__all__ = ("StateAttacher", "StateRouter")

logger = logging.getLogger("aiofutu.streams")

#: (market, code, variant, the message one security's model is decoded from)
_Item = tuple[int, str, int, Any]


class _NoSecurity(ValueError):
    """A push without its required security (the parser does not check required fields)."""


def _split_quotes(s2c: Any, body: bytes) -> list[_Item]:
    out = []
    for q in s2c.basicQotList:
        if not q.HasField("security"):
            raise _NoSecurity("a BasicQot without its security")
        sec = q.security
        out.append((sec.market, sec.code, 0, q))
    return out


def _split_book(s2c: Any, body: bytes) -> list[_Item]:
    # s2c is the columnar view (_book_columns); the body is kept for an exact decode
    if not s2c.HasField("security"):
        raise _NoSecurity("no security")
    sec = s2c.security
    if not (sec.HasField("market") and sec.HasField("code")):
        raise _NoSecurity("a security without its market or code")
    # an absent type is 0, the normal book
    return [(sec.market, sec.code, s2c.orderBookType, (s2c, body))]


def _split_broker(s2c: Any, body: bytes) -> list[_Item]:
    # s2c is the columnar view (_broker_columns); the body is kept for an exact decode
    if not s2c.HasField("security"):
        raise _NoSecurity("no security")
    sec = s2c.security
    if not (sec.HasField("market") and sec.HasField("code")):
        raise _NoSecurity("a security without its market or code")
    return [(sec.market, sec.code, 0, (s2c, body))]


#: kind name -> how a parsed push's S2C splits into per-security items
_SPLIT: dict[str, Callable[[Any, bytes], list[_Item]]] = {
    "quote": _split_quotes,
    "order_book": _split_book,
    "broker": _split_broker,
}
#: kind name -> the model of one item
_DECODE: dict[str, Callable[[Any], Any]] = {
    "quote": quote_from_pb,
    "order_book": book_from_view,
    "broker": broker_from_view,
}
#: kind name -> the schema its pushes are parsed with, when not the kind's push_response
_VIEWS: dict[str, Any] = {"order_book": BookView, "broker": BrokerView}


class _StateRoute(Route):
    """A security's streams of one variant, its latest update and whether it awaits re-sync."""

    __slots__ = ("latest", "resync", "variant")

    def __init__(self, market: int, code: str, variant: int) -> None:
        super().__init__(market, code)
        self.variant = variant
        #: the newest update delivered (what a stream joining later starts from)
        self.latest: StateUpdate | None = None
        #: the link was lost: the next update is the fresh state after the reconnect
        self.resync = False

    def reattached(self) -> None:
        self.latest = None  # pushes went unwatched: the cached state may be old


class StateAttacher(KindAttacher):
    """Attach a state stream: route it, then subscribe (with first push) what has no state.

    A code whose route holds no state yet is subscribed again even if the book has it: OpenD's
    first push then sends its current state, so that a new stream never waits for a change.
    """

    __slots__ = ()

    async def attach(self, sink: Sink) -> None:
        client = self._client
        client._check_open()
        router = self._router
        assert isinstance(router, StateRouter)
        router.attach(sink)  # first, so that the first push (sent with the reply) is routed
        try:
            need = router.without_state(sink)
            if need:
                await client.subscribe(
                    need, [self._sub_type], subscribe_push=True, is_first_push=True
                )
            if client._conn.closed and client.policy is None:
                raise ConnectionLost("connection to OpenD is lost")
        except BaseException:
            router.detach(sink)
            raise


class StateRouter(KindRouter):
    """The router of one state kind (its row in ``_kinds.KINDS`` says which)."""

    def __init__(self, kind: QuoteKind | None = None) -> None:
        if kind is None or kind.name not in _SPLIT:
            raise ValueError(f"StateRouter serves the state kinds {tuple(_SPLIT)}, got {kind!r}")
        super().__init__(kind)
        self.push_proto_id = kind.push_proto_id
        self._routes: dict[tuple[int, str, int], _StateRoute] = {}  # type: ignore[assignment]
        self._response = _VIEWS.get(kind.name, kind.push_response)
        self._split = _SPLIT[kind.name]
        self._decode = _DECODE[kind.name]
        self._what = kind.push_response.DESCRIPTOR.full_name

    def attacher(self, client: _Subscriber, sub_type: SubType) -> StateAttacher:
        return StateAttacher(client, sub_type, self)

    # -- cold path: routes by (market, code, variant) ---------------------------------------

    def _keys(self, sink: Sink) -> Iterator[tuple[int, str, int]]:
        variant = getattr(sink, "variant", 0)
        for code in sink.codes:
            market, local = parse_code(code)
            yield market.wire, local, variant

    def attach(self, sink: Sink) -> None:
        staged = False
        for key in self._keys(sink):
            route = self._routes.get(key)
            if route is None:
                route = self._routes[key] = _StateRoute(*key)
            elif not route.model_sinks:
                route.reattached()
            route.model_sinks.append(sink)
            if route.latest is not None:  # another stream follows it: start from its state
                if not sink.staged:
                    self._dirty_sinks.append(sink)
                sink.staged.append(route.latest)
                staged = True
        if getattr(sink, "overflow", None) == "block":
            self._block_sinks.add(id(sink))
        if staged:
            self.flush()

    def without_state(self, sink: Sink) -> list[str]:
        """The codes of ``sink`` whose route holds no state yet."""
        return [
            code
            for code, key in zip(sink.codes, self._keys(sink), strict=True)
            if self._routes[key].latest is None
        ]

    def detach(self, sink: Sink) -> None:
        for route in self._routes.values():
            if sink in route.model_sinks:
                route.model_sinks.remove(sink)
        self._block_sinks.discard(id(sink))
        if sink in self._dirty_sinks:
            self._dirty_sinks.remove(sink)
            sink.staged = []

    def hold(self) -> None:
        """The link is lost: hold pushes and mark every streamed security as awaiting re-sync."""
        for route in self._routes.values():
            if route.model_sinks:
                if route.held is None:
                    route.held = []
                route.resync = True
                for sink in route.model_sinks:
                    mark = getattr(sink, "_mark_stale", None)
                    if mark is not None:
                        mark(route.code)

    def fail(
        self, codes: set[tuple[int, str]], error: FutuError, sub_type: SubType | None = None
    ) -> None:
        if not self.serves(sub_type):
            return
        variant = None
        if sub_type is not None and self.kind is not None:
            variant = self.kind.sub_types.index(sub_type)
        for route in self._routes.values():
            if (route.market, route.local) in codes and variant in (None, route.variant):
                for sink in list(route.model_sinks):
                    sink._end(error)

    # -- hot path --------------------------------------------------------------------------

    def dispatch_batch(self, frames: list[Frame]) -> None:
        """Parse the pushes of one read chunk and hand each security's state to its streams."""
        routes = self._routes
        for frame in frames:
            body = frame[2]
            response: Any = self._response()
            try:
                response.ParseFromString(body)
            except Exception as exc:  # DecodeError, a missing required field: keep reading
                self.bad_pushes += 1
                logger.warning("dropped a %s push that does not parse: %s", self._what, exc)
                continue
            if response.retType != 0 or not response.HasField("s2c"):
                self.bad_pushes += 1
                logger.warning(
                    "dropped a %s push with retType %d: %s",
                    self._what,
                    response.retType,
                    response.retMsg,
                )
                continue
            try:
                items = self._split(response.s2c, body)
            except _NoSecurity as exc:
                self.bad_pushes += 1
                logger.warning("dropped a %s push: %s", self._what, exc)
                continue
            for market, code, variant, pb in items:
                route = routes.get((market, code, variant))
                if route is None or not route.model_sinks:
                    self.unrouted += 1
                    continue
                update = StateUpdate((market, code, variant), route.code, pb, self._decode)
                if route.held is not None:
                    route.held.append(update)
                else:
                    self._deliver(route, update)

    def _deliver(self, route: _StateRoute, update: StateUpdate) -> None:
        if route.resync:  # the fresh state after a reconnect: say so to each stream
            route.resync = False
            for sink in route.model_sinks:
                resynced = getattr(sink, "_resynced", None)
                if resynced is not None:
                    resynced(route.code)
        route.latest = update
        if not route.dirty:
            route.dirty = True
            self._dirty_routes.append(route)
        for sink in route.model_sinks:
            if not sink.staged:
                self._dirty_sinks.append(sink)
            sink.staged.append(update)
