"""The Qot_UpdateTicker (3011) push router: the ticker hot path, moved here from streams.py.

The reader calls :meth:`TickerRouter.dispatch_batch` synchronously with the 3011 pushes of each
read chunk. The router parses them once, drops duplicates (a tick it already delivered: same
code, ``sequence`` and trade fields, see :func:`trade_key`), notes
gaps and resets in HK trade counters, builds models once for all model streams of that code, and
stages them per stream; :meth:`~aiofutu._routing.KindRouter.flush` hands them over once per
chunk. It never awaits and never runs user code. The cold path (attach, detach, hold, release,
fail, flush) is the generic :class:`~aiofutu._routing.KindRouter`.
"""

from __future__ import annotations

import logging
import operator
from itertools import repeat
from typing import TYPE_CHECKING, Any

from .. import _columns, _protocol
from .._pb import qot_common_pb2, qot_get_ticker_pb2, qot_update_ticker_pb2
from .._routing import KindRouter, Route
from ..codes import format_code
from ..enums import Market, ProtoId, SubType
from ..models import Ticker, tickers_from_columns
from ..streams import Gap

if TYPE_CHECKING:
    from .._codec import Frame
    from .._columns import TickColumns
    from .._kinds import QuoteKind
    from .._routing import Fetch
    from ..subscriptions import SubscriptionBook

__all__ = ("MAX_TICKER_NUM", "TickerRouter", "ticker_columns", "trade_key")

#: OpenD keeps the latest 1000 ticks of a subscribed security (Qot_GetTicker's maximum).
MAX_TICKER_NUM = 1000

logger = logging.getLogger("aiofutu.streams")

_LOW32 = 0xFFFFFFFF
_HALF32 = 0x80000000
#: A re-sent tick is one OpenD still holds (its window is 1000 ticks): its trade counter is at
#: most this far behind the last one seen (ten times the window, for gaps inside it). A tick
#: further behind is a new tape (see ``TickerRouter._dedupe_and_watch``).
_RESEND_WINDOW = 10_000
_UpdateTickerResponse = qot_update_ticker_pb2.Response
_lt = operator.lt
_and = operator.and_
_security_key = _columns.security_key
_decode = _columns.decode
_parse_security = qot_common_pb2.Security.FromString
#: Markets whose ``sequence`` low 32 bits are a per-security trade counter (fact sheet §11).
_COUNTER_MARKETS = frozenset({Market.HK.wire})


def trade_key(cols: TickColumns, i: int) -> tuple[Any, ...]:
    """What tells tick ``i`` of ``cols`` from another trade with the same ``sequence``.

    Its time, price, volume, turnover, direction and type: not OpenD's receive time, which a
    re-send of the same trade may change. US sequences may carry only the second (fact sheet
    §11), so two trades of one second can share a sequence; a re-send repeats all of these.
    """
    types = cols.type
    return (
        cols.time[i],
        cols.price[i],
        cols.volume[i],
        cols.turnover[i],
        cols.dir[i],
        -1 if types is None else types[i],
    )


class _Route(Route):
    """Per-security ticker state on top of :class:`Route`: last sequence, gap watching.

    Besides the last sequence delivered it remembers which trades were delivered at that
    sequence, to tell a re-send from another trade of the same second, at O(1) per tick: the
    last columns delivered (``tail``, whose last ticks are at ``last_seq``) and, once a tick at
    that sequence came again, all their keys (``at_last``, valid while ``at_last_seq ==
    last_seq``). The keys are only computed when a tick at ``last_seq`` comes.
    """

    __slots__ = ("at_last", "at_last_seq", "counter", "last_seq", "reset_after", "tail")

    def __init__(self, market: int, code: str) -> None:
        super().__init__(market, code)
        self.counter = market in _COUNTER_MARKETS
        self.last_seq = -1
        #: after a reset seen by a backfill: the last sequence of the old tape, reported (as a
        #: reset Gap) before the next tick delivered; -1 when none is pending
        self.reset_after = -1
        self.tail: TickColumns | None = None
        self.at_last: set[tuple[Any, ...]] = set()
        self.at_last_seq = -1

    def reattached(self) -> None:
        self.last_seq = self.reset_after = self.at_last_seq = -1
        self.tail = None

    def delivered_at_last(self) -> set[tuple[Any, ...]]:
        """The trade keys of the ticks delivered at ``last_seq`` (the caller may add to it).

        ``at_last`` is complete while ``at_last_seq == last_seq``: it was left by the check of
        the last delivery at that sequence (any later delivery moved ``last_seq``), so a long
        run of one second's trades costs O(1) per tick, not a rebuild per read chunk. Else the
        keys are those of the newest ticks of ``tail``.
        """
        last = self.last_seq
        if self.at_last_seq == last:
            return self.at_last
        keys: set[tuple[Any, ...]] = set()
        tail = self.tail
        if tail is not None:
            tseq = tail.sequence
            i = tail.n - 1
            while i >= 0 and tseq[i] == last:
                keys.add(trade_key(tail, i))
                i -= 1
        return keys

    def is_for(self, cols: TickColumns) -> bool:
        """Whether decoded ``cols`` are of this security (a routing key is only a hint)."""
        return cols.code == self.local and cols.market == self.market


def ticker_columns(frame: Frame) -> TickColumns:
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


def _decode_all(bodies: list[bytes]) -> TickColumns | None:
    """One columnar parse of ``bodies`` joined (``None`` when the view declines them)."""
    n = len(bodies)
    return _decode(bodies[0] if n == 1 else b"".join(bodies), n)


class TickerRouter(KindRouter):
    """Dispatches Qot_UpdateTicker pushes to the streams of each code (runs in the reader)."""

    push_proto_id = ProtoId.QOT_UPDATE_TICKER

    def __init__(self, kind: QuoteKind | None = None) -> None:
        super().__init__(kind)
        self._routes: dict[tuple[int, str], _Route] = {}
        #: encoded Security (see ``security_key``) -> (market, code)
        self._keys: dict[bytes, tuple[int, str] | None] = {}
        #: whether the last read chunk carried pushes of a single security (see dispatch_batch)
        self._one_security = False
        self._dirty_routes: list[_Route] = []
        self.duplicates = 0
        #: ticks delivered although their sequence was the last one's: other trades of the
        #: same second (US), told apart from re-sends by their trade fields
        self.collisions = 0

    def _new_route(self, market: int, code: str) -> _Route:
        return _Route(market, code)

    def dispatch(self, frame: Frame) -> None:
        """Handle one push frame of protocol 3011 (see :meth:`dispatch_batch`)."""
        self.dispatch_batch([frame])

    def dispatch_batch(self, frames: list[Frame]) -> None:
        """Handle the 3011 push frames of one read chunk, in arrival order (the hot path).

        Pushes are grouped by security without parsing (:func:`~aiofutu._columns.security_key`),
        and each security's pushes are parsed together into columns, so the per-tick work left
        in Python is the dedupe check and the model. Models are staged per stream and handed
        over by :meth:`flush`, which the reader calls once per read chunk: consumers wake once
        per chunk, not once per message.
        """
        if self._one_security and len(frames) > 1 and self._dispatch_one_security(frames):
            return
        # A stream of several codes must see them interleaved as they arrived: then only
        # consecutive pushes of one security are parsed together. Otherwise a security's
        # pushes are parsed together whatever came between them.
        ordered = bool(self._multi_code_sinks)
        groups: dict[_Route, list[bytes]] = {}
        runs: list[tuple[_Route, list[bytes]]] = []
        run_route: _Route | None = None
        keys = self._keys
        routes = self._routes
        for frame in frames:
            body = frame[2]
            key = _security_key(body)
            wire = None
            if key is not None:
                wire = keys.get(key)
                if wire is None:
                    wire = self._learn_key(key)
            if wire is None:
                wire = self._exact_security(body)
            route = routes.get(wire) if wire is not None else None
            if route is None or not (route.model_sinks or route.raw_sinks):
                if wire is not None:
                    self.unrouted += 1
                continue
            if ordered:
                if route is run_route:
                    runs[-1][1].append(body)
                else:
                    runs.append((route, [body]))
                    run_route = route
                continue
            group = groups.get(route)
            if group is None:
                groups[route] = [body]
            else:
                group.append(body)
        self._one_security = len(runs if ordered else groups) == 1
        for route, bodies in runs if ordered else groups.items():
            self._decode_group(route, bodies)

    def _dispatch_one_security(self, frames: list[Frame]) -> bool:
        """The previous chunk held one security: try this one as a single parse, no grouping.

        The parse itself verifies that every push is of that security; if not (or if anything
        is irregular) nothing was delivered, and the caller takes the general path.
        """
        key = _security_key(frames[0][2])
        wire = self._keys.get(key) if key is not None else None
        route = self._routes.get(wire) if wire is not None else None
        if route is not None and route.held is None and (route.model_sinks or route.raw_sinks):
            cols = _decode_all([frame[2] for frame in frames])
            if cols is not None and route.is_for(cols):
                self._deliver(route, cols)
                return True
        self._one_security = False
        return False

    def _decode_group(self, route: _Route, bodies: list[bytes]) -> None:
        """Parse pushes of one security together; halve the group around anything irregular.

        One odd push among many (say, an optional field on some of its ticks only) costs a few
        extra parses, not one per push; a push the view cannot represent is decoded exactly.
        """
        n = len(bodies)
        cols = _decode_all(bodies)
        if cols is not None and route.is_for(cols):
            self._deliver_or_hold(route, cols)
        elif n > 1:
            half = n // 2
            self._decode_group(route, bodies[:half])
            self._decode_group(route, bodies[half:])
        else:
            one = cols if cols is not None else self._exact(bodies[0])
            if one is None:
                return
            if route.is_for(one):
                self._deliver_or_hold(route, one)
                return
            # the key was a wrong hint (a layout no serializer writes): re-route
            other = self._routes.get((one.market, one.code))
            if other is None or not (other.model_sinks or other.raw_sinks):
                self.unrouted += 1
            else:
                self._deliver_or_hold(other, one)

    def _deliver_or_hold(self, route: _Route, cols: TickColumns) -> None:
        if route.held is not None:
            route.held.append(cols)
        else:
            self._deliver(route, cols)

    def _learn_key(self, key: bytes) -> tuple[int, str] | None:
        try:
            sec = _parse_security(key)
        except Exception:  # not a Security after all: the message is decoded exactly
            return None
        if not (sec.HasField("market") and sec.HasField("code")):
            return None
        keys = self._keys
        if len(keys) >= 4096:  # bounded: codes nobody streams must not grow it forever
            keys.clear()
        wire = keys[key] = (sec.market, sec.code)
        return wire

    def _exact_security(self, body: bytes) -> tuple[int, str] | None:
        """The security of a push whose layout :func:`security_key` does not know."""
        response = self._parse_exact(body)
        if response is None:
            return None
        sec = response.s2c.security
        return (sec.market, sec.code)

    def _parse_exact(self, body: bytes) -> Any:
        response = _UpdateTickerResponse()
        try:
            response.ParseFromString(body)
        except Exception as exc:  # protobuf raises DecodeError; keep the reader alive regardless
            self.bad_pushes += 1
            logger.warning("dropped a Qot_UpdateTicker push that does not parse: %s", exc)
            return None
        if response.retType != 0:
            self.bad_pushes += 1
            logger.warning(
                "Qot_UpdateTicker push with retType %d: %s", response.retType, response.retMsg
            )
            return None
        return response

    def _exact(self, body: bytes) -> TickColumns | None:
        """Columns of one push through the exact schema (presence per field, errors logged)."""
        response = self._parse_exact(body)
        if response is None:
            return None
        s2c = response.s2c
        sec = s2c.security
        return _columns.from_pb(sec.market, sec.code, s2c.name, s2c.tickerList)

    def _deliver(self, route: _Route, cols: TickColumns) -> None:
        """De-duplicate, watch gaps, and stage ticks for every stream of the security."""
        n = cols.n
        if not n:
            return
        seqs = cols.sequence
        last = route.last_seq
        first = seqs[0]
        if (
            route.counter
            and first > last
            and ((last < 0 and route.reset_after < 0) or (first & _LOW32) == (last & _LOW32) + 1)
            and seqs == list(range(first, first + n))
        ):
            pass  # the usual case: consecutive trades right after the last one (a wrap of the
            # low 32 bits inside the run is a counter restart, which is no gap either)
        else:
            checked = self._dedupe_and_watch(route, cols)
            if checked is None:
                return
            cols = checked
            seqs = cols.sequence
        route.last_seq = seqs[-1]
        route.tail = cols
        if not route.dirty:
            route.dirty = True
            self._dirty_routes.append(route)
        sinks = route.model_sinks
        if sinks:
            if len(sinks) == 1:
                sink = sinks[0]
                staged = sink.staged
                if not staged:
                    self._dirty_sinks.append(sink)
                tickers_from_columns(route.code, cols, staged)
            else:
                models: list[Ticker] = []
                tickers_from_columns(route.code, cols, models)
                for sink in sinks:
                    if not sink.staged:
                        self._dirty_sinks.append(sink)
                    sink.staged.extend(models)
        for sink in route.raw_sinks:
            sink._put_raw(route.code, cols)

    def _dedupe_and_watch(self, route: _Route, cols: TickColumns) -> TickColumns | None:
        """Drop re-sent ticks, report counter gaps and resets of the tape.

        A tick whose ``sequence`` is below the last one kept is a re-send (OpenD's first push,
        a refill) and is dropped, except on a trade-counter market (HK) when its counter is
        more than ``_RESEND_WINDOW`` trades behind the last one: OpenD cannot re-send a tick
        that old, so it starts a new tape (a gateway restarted with its clock behind) and is
        kept. A tick at the last sequence kept is a re-send only if it repeats the trade fields
        (:func:`trade_key`) of a tick delivered at that sequence; else it is another trade of
        the same second (US sequences may carry only the second), delivered in arrival order
        and counted in ``collisions``. Between two kept ticks of a counter market the counter
        (low 32 bits, modulo 2**32) tells the rest: one step is the next trade, more is a gap
        of known size, and none or backwards is a reset (OpenD restart, a new trading day,
        another gateway), reported as ``Gap(..., missing=None, reset=True)``.
        """
        seqs = cols.sequence
        n = cols.n
        last = route.last_seq
        counter = route.counter
        if seqs[0] <= last or (n > 1 and not all(map(_lt, seqs, seqs[1:]))):
            keep: list[int] = []
            cur = last
            #: trade keys delivered at ``cur`` (None: not computed yet)
            seen: set[tuple[Any, ...]] | None = None
            collisions = 0
            for i, s in enumerate(seqs):
                if s > cur or (counter and cur >= 0 and ((cur - s) & _LOW32) > _RESEND_WINDOW):
                    keep.append(i)
                    cur = s
                    seen = None
                elif s == cur:
                    if seen is None:
                        if keep and seqs[keep[-1]] == cur:  # the one tick kept at ``cur``
                            seen = {trade_key(cols, keep[-1])}
                        else:
                            seen = route.delivered_at_last()
                    key = trade_key(cols, i)
                    if key not in seen:
                        seen.add(key)
                        keep.append(i)
                        collisions += 1
            self.duplicates += n - len(keep)
            self.collisions += collisions
            if seen is not None and cur >= 0:  # trades at the new last sequence, for later
                route.at_last = seen
                route.at_last_seq = cur
            if not keep:
                return None
            if len(keep) < n:
                cols = cols.take(keep)
                seqs = cols.sequence
                n = cols.n
        if last < 0 and route.reset_after >= 0:  # a backfill found another tape: say so first
            self._report(Gap(route.code, route.reset_after, seqs[0], None, True), route)
            route.reset_after = -1
        if counter:
            lows = list(map(_and, seqs, repeat(_LOW32, n)))
            first = lows[0]
            start = (last & _LOW32) + 1 if last >= 0 else first
            if first != start or lows != list(range(first, first + n)):
                prev = last
                for s in seqs:
                    if prev >= 0 and s != prev and (s & _LOW32) != (prev & _LOW32) + 1:
                        self._gap(route, prev, s)
                    prev = s
        return cols

    def _gap(self, route: _Route, prev: int, seq: int) -> None:
        """Two kept ticks whose trade counters are not one apart: a gap or a reset."""
        step = (seq - prev) & _LOW32  # modulo 2**32: a counter that wraps goes on
        if step == 1:
            return
        if 0 < step <= _HALF32:
            self._report(Gap(route.code, prev, seq, step - 1), route)
        else:  # the same counter again, or backwards
            self._report(Gap(route.code, prev, seq, None, True), route)

    def _report(self, gap: Gap, route: _Route) -> None:
        if gap.reset:
            logger.warning(
                "tape of %s restarted: the trade counter went back at sequence %d after %d "
                "(OpenD restart, new trading day or another gateway); losses unknown",
                gap.code,
                gap.before,
                gap.after,
            )
        else:
            logger.warning(
                "gap on %s: %s tick(s) lost between sequences %d and %d",
                gap.code,
                "an unknown number of" if gap.missing is None else gap.missing,
                gap.after,
                gap.before,
            )
        for sink in (*route.model_sinks, *route.raw_sinks):
            sink._put_gap(gap)

    # -- reconnect support -------------------------------------------------------------------

    def streamed_securities(self) -> list[tuple[int, str, int]]:
        """(market, code, last sequence) of every security with an open stream."""
        return [(r.market, r.local, r.last_seq) for r in self.streamed_routes()]

    async def restore(self, fetch: Fetch, book: SubscriptionBook) -> None:
        """Backfill every streamed security from Qot_GetTicker (OpenD's latest 1000 ticks)."""
        for market, local, last in self.streamed_securities():
            if last < 0 or not book.has(format_code(market, local), SubType.TICKER):
                continue
            frame = await fetch(
                ProtoId.QOT_GET_TICKER,
                _protocol.get_ticker_request(market, local, MAX_TICKER_NUM),
                None,
            )
            self.backfill(ticker_columns(frame), MAX_TICKER_NUM)

    def backfill(self, cols: TickColumns, window: int) -> None:
        """Deliver ticks fetched after a reconnect that are newer than the last one delivered.

        The returned ticks are oldest first. Those at the last sequence delivered are sorted
        out by position: the ones after the last tick delivered are newer (trades of that same
        second made since); the ones before it were delivered already or came before the
        stream started. If the last tick delivered is not among them, each is checked against
        the trades delivered at that sequence.

        ``window`` is how many ticks OpenD keeps: when ``window`` ticks came back and none is
        older than the last one delivered (nor is that one among them) and the sequence has no
        trade counter, more may have been lost, so a gap is reported.

        When even the newest returned tick is older than the last one delivered, this OpenD does
        not hold the tape the stream was on (it restarted without it, or it is another gateway):
        its ticks cannot be told apart from re-sends, so none is delivered; the stream goes on
        with the next live tick, after a reset ``Gap`` (``missing=None``).
        """
        route = self._routes.get((cols.market, cols.code))
        if route is None or route.last_seq < 0:
            return
        last = route.last_seq
        seqs = cols.sequence
        n = cols.n
        if n and seqs[-1] < last:
            route.reset_after = last
            route.last_seq = -1
            return
        lo = next((i for i, q in enumerate(seqs) if q >= last), n)
        if lo == n:
            return
        start = lo
        found = False
        tail = route.tail
        if seqs[lo] == last and tail is not None and tail.n and tail.sequence[-1] == last:
            mine = trade_key(tail, tail.n - 1)
            j = lo
            while j < n and seqs[j] == last:
                if trade_key(cols, j) == mine:
                    start, found = j + 1, True
                j += 1
        if start == n:
            return
        newer = cols.slice(start, n) if start else cols
        first = newer.sequence[0]
        if not route.counter and n >= window and lo == 0 and not found:
            self._report(Gap(route.code, last, first, None), route)
            if first > last:
                route.last_seq = first - 1
        duplicates = self.duplicates
        self._deliver(route, newer)
        self.duplicates = duplicates  # a backfill overlaps what was delivered: no re-send
        self.flush()
