"""The push router of the "series" shape, once for every series kind (K-lines, time share).

A series push carries the newest item(s) of one route: a bar of (security, KL type, rehab type)
for 3007, a minute of a security for 3009. The router upserts by ``time``: an item with the
time of the open one updates it, a newer time closes it (the closed item is staged once, with
its last pushed values, before the new one), an older time is a re-send and is dropped, and so
is an exact repeat of the open item (OpenD's first push after a reconnect). What differs per
kind is only :meth:`SeriesRouter._parse` (the push's route key and items), how a stream's
route key is made, the update model and the get request used to backfill.

After a reconnect, :meth:`SeriesRouter.restore` fetches each streamed route's latest items
(3006 with 1000 bars, 3008) and runs them through the same upsert, so that what closed while
the link was down is delivered in order and once; when even the oldest returned item is newer
than the last one delivered and the reply is full, a
:class:`~aiofutu.quotes.series_stream.SeriesGap`
is reported first.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

from .. import _protocol
from .._pb import qot_get_kl_pb2, qot_get_rt_pb2, qot_update_kl_pb2, qot_update_rt_pb2
from .._routing import KindRouter, Route
from ..codes import format_code, parse_code
from ..enums import ProtoId, SubType
from ..errors import ProtocolError
from ._model import trusted
from .kline import (
    MAX_KL_NUM,
    AuType,
    KLType,
    get_kl_request,
    kl_type_of,
    kline_from_pb,
    klines_from_s2c,
)
from .rt import get_rt_request, rt_from_s2c
from .series_stream import KLineUpdate, RTUpdate, SeriesGap

if TYPE_CHECKING:
    from .._codec import Frame
    from .._kinds import QuoteKind
    from .._routing import Fetch, Sink
    from ..errors import FutuError
    from ..subscriptions import SubscriptionBook

__all__ = ("KLineRouter", "RTRouter", "SeriesRouter", "kline_sub_type")

logger = logging.getLogger("aiofutu.streams")

_AU_BY_WIRE = {m.wire: m for m in AuType}


def kline_sub_type(kl_type: KLType) -> SubType:
    """The subscription type of a bar period (the SDK spells both alike; numbers differ)."""
    return SubType.coerce(kl_type.value)


class SeriesRoute(Route):
    """One series: its streams, and the open item (the newest delivered, last version)."""

    __slots__ = ("key", "open")

    def __init__(self, market: int, code: str, key: tuple[int, ...]) -> None:
        super().__init__(market, code)
        #: the route key beyond (market, code): (KL type, rehab type) for K-lines
        self.key = key
        self.open: Any = None

    def reattached(self) -> None:
        self.open = None


class SeriesRouter(KindRouter):
    """Routes series pushes by (market, code, *key) and upserts them by time."""

    #: the kind's get request protocol, used to backfill after a reconnect
    get_proto_id: int = 0
    #: how many items a backfill returns at most (0: all there are, so never a gap)
    window: int = 0

    def __init__(self, kind: QuoteKind | None = None) -> None:
        super().__init__(kind)
        self.duplicates = 0

    # -- per kind ----------------------------------------------------------------------------

    def _parse(self, body: bytes) -> tuple[tuple[Any, ...], list[Any]] | None:
        """(route key, items oldest first) of one push, or ``None`` (counted, logged)."""
        raise NotImplementedError

    def _update(self, route: SeriesRoute, item: Any, closed: bool) -> Any:
        raise NotImplementedError

    def _sub_type(self, route: SeriesRoute) -> SubType:
        raise NotImplementedError

    def _backfill_request(self, route: SeriesRoute) -> Any:
        raise NotImplementedError

    def _reply_items(self, frame: Frame) -> list[Any]:
        raise NotImplementedError

    # -- routes ------------------------------------------------------------------------------

    def attach(self, sink: Sink) -> None:
        key: tuple[int, ...] = getattr(sink, "series_key", ())
        routes = cast("dict[tuple[Any, ...], SeriesRoute]", self._routes)
        for code in sink.codes:
            market, local = parse_code(code)
            full = (market.wire, local, *key)
            route = routes.get(full)
            if route is None:
                route = routes[full] = SeriesRoute(market.wire, local, key)
            elif not route.model_sinks:
                route.reattached()  # unwatched since the last stream left: no continuity
            route.model_sinks.append(sink)
        if getattr(sink, "overflow", None) == "block":
            self._block_sinks.add(id(sink))
        if len(sink.codes) > 1:
            self._multi_code_sinks.add(id(sink))

    def fail(
        self, codes: set[tuple[int, str]], error: FutuError, sub_type: SubType | None = None
    ) -> None:
        """End the streams of ``codes`` with ``error`` (only for this router's sub types)."""
        if not self.serves(sub_type):
            return
        for route in self._routes.values():
            if (route.market, route.local) in codes:
                for sink in route.model_sinks:
                    sink._end(error)

    def dispatch(self, frame: Frame) -> None:
        """Handle one push frame (see :meth:`dispatch_batch`)."""
        self.dispatch_batch([frame])

    def dispatch_batch(self, frames: list[Frame]) -> None:
        """Route the pushes of one read chunk, in arrival order (runs in the reader)."""
        routes = cast("dict[tuple[Any, ...], SeriesRoute]", self._routes)
        for frame in frames:
            parsed = self._parse(frame[2])
            if parsed is None:
                continue
            key, items = parsed
            route = routes.get(key)
            if route is None or not route.model_sinks:
                self.unrouted += 1
                continue
            if route.held is not None:
                route.held.append(items)
            else:
                self._deliver(route, items)

    def _deliver(self, route: SeriesRoute, items: list[Any]) -> None:
        """Upsert ``items`` by time and stage the updates for every stream of the route."""
        out: list[Any] = []
        update = self._update
        for item in items:
            cur = route.open
            if cur is None or item.time > cur.time:
                if cur is not None:
                    out.append(update(route, cur, True))
                route.open = item
                out.append(update(route, item, False))
            elif item.time == cur.time and item.__dict__ != cur.__dict__:
                route.open = item
                out.append(update(route, item, False))
            else:  # a re-send: older than the open item, or the open item unchanged
                self.duplicates += 1
        if not out:
            return
        if not route.dirty:
            route.dirty = True
            self._dirty_routes.append(route)
        closed: list[Any] | None = None
        for sink in route.model_sinks:
            if getattr(sink, "closed_only", False):
                if closed is None:
                    closed = [u for u in out if u.closed]
                batch = closed
            else:
                batch = out
            if batch:
                if not sink.staged:
                    self._dirty_sinks.append(sink)
                sink.staged.extend(batch)

    def _bad(self, what: str, exc: object) -> None:
        self.bad_pushes += 1
        logger.warning("dropped a %s push: %s", what, exc)

    # -- reconnect ---------------------------------------------------------------------------

    async def restore(self, fetch: Fetch, book: SubscriptionBook) -> None:
        """Backfill every streamed route from the kind's get request (what closed while down)."""
        for route in self.streamed_routes():
            if route.open is None or not book.has(route.code, self._sub_type(route)):
                continue
            frame = await fetch(self.get_proto_id, self._backfill_request(route), None)
            self.backfill(route, self._reply_items(frame))

    def backfill(self, route: SeriesRoute, items: list[Any]) -> None:
        """Deliver the fetched ``items`` (oldest first) through the upsert, after a gap if any."""
        cur = route.open
        if cur is None:
            return
        if (
            self.window
            and len(items) >= self.window
            and items[0].time > cur.time
            and route.model_sinks
        ):
            gap = SeriesGap(route.code, cur.time, items[0].time)
            logger.warning(
                "gap on %s: items between %s and %s may be lost (more closed while the link "
                "was down than OpenD returns)",
                route.code,
                gap.after,
                gap.before,
            )
            for sink in route.model_sinks:
                sink._put_gap(gap)
        self._deliver(route, [i for i in items if i.time >= cur.time])
        self.flush()


class KLineRouter(SeriesRouter):
    """Qot_UpdateKL (3007) pushes, keyed by (security, KL type, rehab type)."""

    push_proto_id = ProtoId.QOT_UPDATE_KL
    get_proto_id = ProtoId.QOT_GET_KL
    window = MAX_KL_NUM

    def _parse(self, body: bytes) -> tuple[tuple[Any, ...], list[Any]] | None:
        response = qot_update_kl_pb2.Response()
        try:
            response.ParseFromString(body)
        except Exception as exc:  # DecodeError; the reader must live on regardless
            self._bad("Qot_UpdateKL", exc)
            return None
        if response.retType != 0:
            self._bad("Qot_UpdateKL", f"retType {response.retType}: {response.retMsg}")
            return None
        s2c = response.s2c
        try:
            kl_type_of(s2c.klType)
        except ProtocolError as exc:
            self._bad("Qot_UpdateKL", exc)
            return None
        sec = s2c.security
        key = (sec.market, sec.code, s2c.klType, s2c.rehabType)
        return key, [kline_from_pb(k) for k in s2c.klList]

    def _update(self, route: SeriesRoute, item: Any, closed: bool) -> KLineUpdate:
        kl, au = route.key
        return trusted(
            KLineUpdate,
            {
                "code": route.code,
                "kl_type": kl_type_of(kl),
                "au_type": _AU_BY_WIRE[au],
                "closed": closed,
                "bar": item,
            },
        )

    def _sub_type(self, route: SeriesRoute) -> SubType:
        return kline_sub_type(kl_type_of(route.key[0]))

    def _backfill_request(self, route: SeriesRoute) -> qot_get_kl_pb2.Request:
        kl, au = route.key
        return get_kl_request(route.code, MAX_KL_NUM, kl_type_of(kl), _AU_BY_WIRE[au])

    def _reply_items(self, frame: Frame) -> list[Any]:
        resp = _protocol.decode_response(
            qot_get_kl_pb2.Response, frame.body, ProtoId.QOT_GET_KL, frame.serial
        )
        return list(klines_from_s2c(resp.s2c).bars)


class RTRouter(SeriesRouter):
    """Qot_UpdateRT (3009) pushes, keyed by security; 3008 returns the whole day (no gaps)."""

    push_proto_id = ProtoId.QOT_UPDATE_RT
    get_proto_id = ProtoId.QOT_GET_RT
    window = 0

    def _parse(self, body: bytes) -> tuple[tuple[Any, ...], list[Any]] | None:
        response = qot_update_rt_pb2.Response()
        try:
            response.ParseFromString(body)
        except Exception as exc:
            self._bad("Qot_UpdateRT", exc)
            return None
        if response.retType != 0:
            self._bad("Qot_UpdateRT", f"retType {response.retType}: {response.retMsg}")
            return None
        sec = response.s2c.security
        return (sec.market, sec.code), list(rt_from_s2c(response.s2c).points)

    def _update(self, route: SeriesRoute, item: Any, closed: bool) -> RTUpdate:
        return trusted(RTUpdate, {"code": route.code, "closed": closed, "point": item})

    def _sub_type(self, route: SeriesRoute) -> SubType:
        return SubType.RT_DATA

    def _backfill_request(self, route: SeriesRoute) -> qot_get_rt_pb2.Request:
        return get_rt_request(format_code(route.market, route.local))

    def _reply_items(self, frame: Frame) -> list[Any]:
        resp = _protocol.decode_response(
            qot_get_rt_pb2.Response, frame.body, ProtoId.QOT_GET_RT, frame.serial
        )
        return list(rt_from_s2c(resp.s2c).points)
