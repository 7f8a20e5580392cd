"""The simulator's state kinds: each security's basic quote (3004/3005), order books (3012/3013,
normal and odd lot) and HK broker queue (3014/3015), derived from its tick tape, and their
request handlers.

The kinds agree because they come from one tape: the quote is the fold of the day's ticks (last
price = the last tick's, volume and turnover = the day's sums), the book is centred on the last
tick's price on the market's tick ladder, and the broker queue sits at the book's levels. A
security's day fold starts when a state of it is first needed (a subscription or a request),
from the ticks on its tape of the last tick's local date, and then takes every new tick.

A state is rebuilt after each tick batch and pushed, as OpenD pushes a changed state, to every
connection subscribed to that (code, SubType) with push registered; a setter
(:meth:`StateBook.set_quote`, :meth:`~StateBook.set_order_book`,
:meth:`~StateBook.set_broker_queue`) replaces it exactly until the next tick of that security.
Books and queues are drawn from an RNG seeded by the simulator's seed, the code and the tape's
position, so one seed and one tape give the same states.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from .._pb import (
    qot_common_pb2,
    qot_get_basic_qot_pb2,
    qot_get_broker_pb2,
    qot_get_order_book_pb2,
)
from ..enums import Market, ProtoId, SubType
from ._replies import Result, SubKey, fail, ok, refuse_unknown, security_code
from ._scenarios import ErrCode
from .kinds import basic, broker, orderbook
from .kinds._common import rng_of
from .kinds.basic import DayFold

if TYPE_CHECKING:
    from ._market import SecurityState
    from ._server import Simulator
    from ._session import Session

__all__ = (
    "STATE_SUB_TYPES",
    "StateBook",
    "StateBurst",
    "get_broker",
    "get_order_book",
    "get_quote",
)

logger = logging.getLogger("aiofutu.sim")

QUOTE = SubType.QUOTE.wire
BOOK = SubType.ORDER_BOOK.wire
ODD = SubType.ORDER_BOOK_ODD.wire
BROKER = SubType.BROKER.wire
#: The SubTypes whose data is a state (pushed whole on each change).
STATE_SUB_TYPES = frozenset((QUOTE, BOOK, ODD, BROKER))
_PUSH_ID = {
    QUOTE: int(ProtoId.QOT_UPDATE_BASIC_QOT),
    BOOK: int(ProtoId.QOT_UPDATE_ORDER_BOOK),
    ODD: int(ProtoId.QOT_UPDATE_ORDER_BOOK),
    BROKER: int(ProtoId.QOT_UPDATE_BROKER),
}
_NAMES = {QUOTE: "QUOTE", BOOK: "ORDER_BOOK", ODD: "ORDER_BOOK_ODD", BROKER: "BROKER"}
#: Markets whose books carry the server receive times (fact sheet 4: HK and A-shares).
_RECV_MARKETS = frozenset((Market.HK, Market.SH, Market.SZ))
#: Broker levels per side at most (the SDK's doc samples show up to 40 rows in all).
_BROKER_LEVELS = 10
#: Distinct books a :meth:`StateBook.burst_books` cycles through.
_BURST_DISTINCT = 64

#: ``set_quote`` keywords: the :class:`aiofutu.Quote` field names and their BasicQot fields.
QUOTE_FIELDS: dict[str, str] = {
    "name": "name",
    "update_time": "updateTime",
    "last_price": "curPrice",
    "open_price": "openPrice",
    "high_price": "highPrice",
    "low_price": "lowPrice",
    "prev_close_price": "lastClosePrice",
    "volume": "volume",
    "turnover": "turnover",
    "turnover_rate": "turnoverRate",
    "amplitude": "amplitude",
    "suspension": "isSuspended",
    "listing_date": "listTime",
    "price_spread": "priceSpread",
    "dark_status": "darkStatus",
    "sec_status": "secStatus",
    "update_timestamp": "updateTimestamp",
    "listing_timestamp": "listTimestamp",
    "hp_volume": "hpVolume",
}

Level = tuple[Any, ...]
_Book = tuple[orderbook.BookSides, "tuple[str, float] | None"]


@dataclass(frozen=True)
class StateBurst:
    """What a :meth:`StateBook.burst_books` did, for benchmarks."""

    updates: int
    connections: int
    #: Frame bytes written to each connection.
    bytes_per_connection: int
    #: Building, serializing and framing every update, before the first write.
    encode_seconds: float
    #: From the first write until every connection's bytes were handed to the socket.
    write_seconds: float

    @property
    def updates_per_second(self) -> float:
        """Updates written per second per connection."""
        return self.updates / self.write_seconds if self.write_seconds > 0 else float("inf")


class _Tracked:
    """One security's day fold and its current states (each with the tape version it is of)."""

    __slots__ = ("books", "broker", "date", "fold", "quote", "sec", "version")

    def __init__(self, sec: SecurityState) -> None:
        self.sec = sec
        ticks = sec.recent()
        self.date = ticks[-1].time[:10] if ticks else ""
        self.fold = DayFold.from_ticks(t for t in ticks if t.time[:10] == self.date)
        self.version = 0
        self.quote: tuple[int, qot_common_pb2.BasicQot] | None = None
        self.books: dict[int, tuple[int, _Book]] = {}
        self.broker: tuple[int, broker.BrokerSides] | None = None
        sec.on_ticks = self.add

    def add(self, ticks: Sequence[qot_common_pb2.Ticker]) -> None:
        """Fold a batch of new ticks (a new local date starts a new day)."""
        fold = self.fold
        for tick in ticks:
            date = tick.time[:10]
            if date != self.date:
                self.date = date
                fold = self.fold = DayFold()
            fold.add(tick)
        self.version += 1


class StateBook:
    """The current states of every security a connection asked about, and their pushes."""

    def __init__(self, server: Simulator) -> None:
        self._server = server
        self._tracked: dict[str, _Tracked] = {}

    # ---- the states -----------------------------------------------------------------------

    @property
    def right(self) -> str:
        """The simulated quote right (``SimConfig.quote_right``)."""
        return self._server.config.quote_right

    def depth(self, market: Market) -> int:
        """Book levels per side served for ``market`` under the quote right (0: no book)."""
        return orderbook.depth_limit(market, self.right)

    def _state(self, code: str) -> _Tracked:
        st = self._tracked.get(code)
        if st is None:
            st = self._tracked[code] = _Tracked(self._server.market.security(code))
        return st

    def track(self, keys: Iterable[SubKey]) -> None:
        """Start the day fold of every code subscribed to a state SubType in ``keys``."""
        for code, sub_type in keys:
            if sub_type in STATE_SUB_TYPES:
                self._state(code)

    def quote(self, code: str) -> qot_common_pb2.BasicQot:
        """The current basic quote of ``code``."""
        st = self._state(code)
        if st.quote is None or st.quote[0] != st.version:
            sec = st.sec
            q = basic.basic_qot(
                sec.market, sec.security.code, st.fold, prev_close=sec.prev_close, name=sec.name
            )
            if sec.hp_volume:
                q.hpVolume = float(st.fold.volume)
            st.quote = (st.version, q)
        return st.quote[1]

    def _book(self, code: str, odd: bool) -> _Book:
        st = self._state(code)
        kind = int(odd)
        cached = st.books.get(kind)
        if cached is None or cached[0] != st.version:
            sec = st.sec
            last = sec.latest()
            price = last.price if last is not None else sec.prev_close
            seed = rng_of(self._server.config.seed, sec.code, "book", kind, st.version)
            sides = orderbook.book_sides(
                sec.market,
                price,
                self.depth(sec.market),
                seed,
                lot=1 if odd else sec.lot,
                last_direction=last.dir if last is not None else 0,
                details=self.right == "SF",
            )
            recv = None
            if last is not None and sec.market in _RECV_MARKETS:
                recv = (last.time, last.timestamp)
            cached = st.books[kind] = (st.version, (sides, recv))
        return cached[1]

    def order_book(self, code: str, num: int | None = None, *, odd: bool = False) -> Any:
        """The current book of ``code`` (``num`` levels per side at most) as a 3012 S2C."""
        sides, recv = self._book(code, odd)
        bids, asks = sides
        if num is not None:
            bids, asks = bids[:num], asks[:num]
        sec = self._state(code).sec
        return orderbook.s2c(
            sec.market,
            sec.security.code,
            (bids, asks),
            name=sec.name,
            recv_time=recv,
            order_book_type=1 if odd else None,
        )

    def broker_queue(self, code: str) -> qot_get_broker_pb2.S2C:
        """The current broker queue of (HK) ``code`` as a 3014 S2C."""
        st = self._state(code)
        if st.broker is None or st.broker[0] != st.version:
            (bids, asks), _ = self._book(code, False)
            seed = rng_of(self._server.config.seed, st.sec.code, "broker", st.version)
            sides = broker.broker_sides(
                min(len(bids), _BROKER_LEVELS),
                min(len(asks), _BROKER_LEVELS),
                seed,
                details=self.right == "SF",
            )
            st.broker = (st.version, sides)
        sec = st.sec
        return broker.s2c(sec.market, sec.security.code, st.broker[1], name=sec.name)

    # ---- pushes ---------------------------------------------------------------------------

    def _push_body(self, code: str, sub_type: int) -> bytes:
        if sub_type == QUOTE:
            return basic.push_body([self.quote(code)])
        if sub_type == BROKER:
            return broker.push_body(self.broker_queue(code))
        return orderbook.push_body(self.order_book(code, odd=sub_type == ODD))

    def first_push(self, code: str, sub_type: int) -> tuple[int, bytes] | None:
        """The first push of a new (code, state SubType) subscription; None for other types."""
        if sub_type not in STATE_SUB_TYPES:
            return None
        return _PUSH_ID[sub_type], self._push_body(code, sub_type)

    def changed(self, code: str, sub_types: Iterable[int] = STATE_SUB_TYPES) -> None:
        """``code``'s states changed: push each to the connections registered for it."""
        if code not in self._tracked or self._server.faults.stall:
            return
        sessions = self._server.sessions()
        for sub_type in sub_types:
            key = (code, sub_type)
            targets = [s for s in sessions if key in s.pushes]
            if not targets:
                continue
            body = self._push_body(code, sub_type)
            digest = hashlib.sha1(body).digest()
            proto_id = _PUSH_ID[sub_type]
            for session in targets:
                session.push(body, digest, proto_id)

    # ---- checks ---------------------------------------------------------------------------

    def refuse_sub(self, keys: Iterable[SubKey]) -> str | None:
        """Why OpenD would refuse subscribing ``keys`` (a state kind the market lacks), or None."""
        for code, sub_type in keys:
            market = self._server.market.security(code).market
            if sub_type == BROKER and market is not Market.HK:
                return f"{code}: the broker queue (BROKER) is for HK securities only"
            if sub_type == BROKER and self.right == "LV1":
                return f"{code}: no broker queue under the HK LV1 quote right"
            if sub_type in (BOOK, ODD) and self.depth(market) == 0:
                return f"{code}: no order book under the {self.right} quote right"
        return None

    # ---- setters (tests) ------------------------------------------------------------------

    def set_quote(self, code: str, **fields: Any) -> qot_common_pb2.BasicQot:
        """Replace fields of ``code``'s current quote and push it (see ``Simulator.set_quote``)."""
        st = self._state(code)
        q = qot_common_pb2.BasicQot()
        q.CopyFrom(self.quote(code))
        for name, value in fields.items():
            field = QUOTE_FIELDS.get(name, name)
            if (
                field not in qot_common_pb2.BasicQot.DESCRIPTOR.fields_by_name
                or field == "security"
            ):
                names = ", ".join(QUOTE_FIELDS)
                raise TypeError(f"set_quote() got an unknown quote field {name!r}; use {names}")
            try:
                setattr(q, field, getattr(value, "wire", value))
            except (TypeError, ValueError, AttributeError) as exc:
                raise TypeError(f"set_quote(): bad value for {name!r}: {exc}") from None
        st.quote = (st.version, q)
        self.changed(code, (QUOTE,))
        return q

    def set_order_book(
        self,
        code: str,
        bids: Sequence[Level],
        asks: Sequence[Level],
        *,
        odd: bool = False,
        recv_time: tuple[str, float] | None = None,
    ) -> None:
        """Replace ``code``'s current book and push it (see ``Simulator.set_order_book``)."""
        st = self._state(code)
        sides = (_levels(bids, "bids"), _levels(asks, "asks"))
        st.books[int(odd)] = (st.version, (sides, recv_time))
        self.changed(code, (ODD if odd else BOOK,))

    def set_broker_queue(self, code: str, bids: Sequence[Level], asks: Sequence[Level]) -> None:
        """Replace ``code``'s broker queue and push it (see ``Simulator.set_broker_queue``)."""
        st = self._state(code)
        if st.sec.market is not Market.HK:
            raise ValueError(f"{code}: the broker queue is for HK securities only")
        st.broker = (st.version, (_brokers(bids, "bids"), _brokers(asks, "asks")))
        self.changed(code, (BROKER,))

    async def burst_books(self, code: str, n: int, *, odd: bool = False) -> StateBurst:
        """Push ``n`` book updates of ``code`` as fast as the sockets take them (benchmarks).

        The updates cycle through up to 64 distinct seeded books of the served depth, centred on
        the last price; each connection registered for the book gets all ``n``, with
        backpressure. Afterwards the current book is the last one pushed.
        """
        if n < 0:
            raise ValueError("n must be >= 0")
        st = self._state(code)
        sec = st.sec
        started = time.perf_counter()
        kind = int(odd)
        _, recv = self._book(code, odd)
        last = sec.latest()
        price = last.price if last is not None else sec.prev_close
        books: list[orderbook.BookSides] = []
        bodies: list[bytes] = []
        for i in range(min(n, _BURST_DISTINCT)):
            sides = orderbook.book_sides(
                sec.market,
                price,
                self.depth(sec.market),
                rng_of(self._server.config.seed, code, "burst", kind, st.version, i),
                lot=1 if odd else sec.lot,
                details=self.right == "SF",
            )
            books.append(sides)
            s2c = orderbook.s2c(
                sec.market,
                sec.security.code,
                sides,
                name=sec.name,
                recv_time=recv,
                order_book_type=1 if odd else None,
            )
            bodies.append(orderbook.push_body(s2c))
        digests = [hashlib.sha1(b).digest() for b in bodies]
        k = len(bodies)
        all_bodies = [bodies[i % k] for i in range(n)]
        all_digests = [digests[i % k] for i in range(n)]
        key = (code, ODD if odd else BOOK)
        stalled = self._server.faults.stall
        targets = () if stalled else [s for s in self._server.sessions() if key in s.pushes]
        proto_id = _PUSH_ID[BOOK]
        work = [(s, await s.prepare_bulk(all_bodies, all_digests, proto_id)) for s in targets]
        encoded = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for session, chunks in work:
                tg.start_soon(session.send_bulk, chunks)
        written = time.perf_counter()
        if books:
            st.books[kind] = (st.version, (books[(n - 1) % k], recv))
        result = StateBurst(
            updates=n,
            connections=len(work),
            bytes_per_connection=sum(len(c) for c, _ in work[0][1]) if work else 0,
            encode_seconds=encoded - started,
            write_seconds=written - encoded,
        )
        logger.info("book burst %s: %s", code, result)
        return result


def _levels(levels: Sequence[Level], side: str) -> list[qot_common_pb2.OrderBook]:
    """``(price, volume, orders[, {order_id: volume}])`` tuples as OrderBook levels."""
    out = []
    for i, level in enumerate(levels):
        if not 3 <= len(level) <= 4:
            raise ValueError(
                f"{side}[{i}]: a level is (price, volume, orders) or "
                f"(price, volume, orders, {{order_id: volume}}), got {level!r}"
            )
        pb = qot_common_pb2.OrderBook(
            price=float(level[0]), volume=int(level[1]), orederCount=int(level[2])
        )
        if len(level) == 4:
            details = level[3]
            pairs = details.items() if isinstance(details, Mapping) else details
            for order_id, volume in pairs:
                pb.detailList.add(orderID=int(order_id), volume=int(volume))
        out.append(pb)
    return out


def _brokers(entries: Sequence[Level], side: str) -> list[qot_common_pb2.Broker]:
    """``(id, name, pos[, order_id, volume])`` tuples as Broker entries."""
    out = []
    for i, entry in enumerate(entries):
        if len(entry) not in (3, 5):
            raise ValueError(
                f"{side}[{i}]: a broker is (id, name, pos) or (id, name, pos, order_id, "
                f"volume), got {entry!r}"
            )
        pb = qot_common_pb2.Broker(id=int(entry[0]), name=str(entry[1]), pos=int(entry[2]))
        if len(entry) == 5:
            pb.orderID, pb.volume = int(entry[3]), int(entry[4])
        out.append(pb)
    return out


# ---- request handlers (found by kind name: ``get_<kind>``) ------------------------------------


def _not_subscribed(codes: Sequence[str], sub_type: int, what: str) -> Result:
    name = _NAMES[sub_type]
    listed = ", ".join(codes[:5]) + (f" and {len(codes) - 5} more" if len(codes) > 5 else "")
    return fail(
        f"{listed} {'is' if len(codes) == 1 else 'are'} not subscribed to {name} on this "
        f"connection: subscribe with SubType {name} ({sub_type}) before requesting {what}",
        ErrCode.NOT_SUBSCRIBED,
    )


def _one_code(session: Session, c2s: Any, what: str) -> str | Result:
    code = security_code(c2s.security) if c2s.HasField("security") else None
    if code is None:
        return fail(f"{what}: a valid security is required")
    unknown = refuse_unknown(session, (code,), what)
    return code if unknown is None else unknown


def get_quote(session: Session, c2s: qot_get_basic_qot_pb2.C2S) -> Result:
    """3004: the current quote of each code (every one must be subscribed to QUOTE)."""
    what = "Qot_GetBasicQot"
    if not c2s.securityList:
        return fail(f"{what}: securityList is empty")
    codes: list[str] = []
    for sec in c2s.securityList:
        code = security_code(sec)
        if code is None:
            return fail(f"{what}: invalid security (market={sec.market}, code={sec.code!r})")
        codes.append(code)
    codes = list(dict.fromkeys(codes))
    unknown = refuse_unknown(session, codes, what)
    if unknown is not None:
        return unknown
    missing = [c for c in codes if (c, QUOTE) not in session.subs]
    if missing:
        return _not_subscribed(missing, QUOTE, "quotes")
    states = session.server.states
    s2c = basic.s2c([states.quote(code) for code in codes])
    return ok(qot_get_basic_qot_pb2.Response(s2c=s2c))


def get_order_book(session: Session, c2s: qot_get_order_book_pb2.C2S) -> Result:
    """3012: ``num`` levels per side (clamped to the quote right's depth) of a subscribed book."""
    what = "Qot_GetOrderBook"
    code = _one_code(session, c2s, what)
    if not isinstance(code, str):
        return code
    book_type = c2s.orderBookType if c2s.HasField("orderBookType") else 0
    if book_type not in (0, 1):
        return fail(f"{what}: unknown orderBookType {book_type} (0 normal, 1 odd lot)")
    sub_type = ODD if book_type == 1 else BOOK
    if (code, sub_type) not in session.subs:
        return _not_subscribed([code], sub_type, "its order book")
    states = session.server.states
    depth = states.depth(session.server.market.security(code).market)
    if c2s.num < 1:
        return fail(f"{what}: num must be between 1 and {depth} (levels per side), got {c2s.num}")
    # OpenD's handling of num above the right's depth is not documented; the simulator clamps.
    s2c = states.order_book(code, min(c2s.num, depth), odd=book_type == 1)
    return ok(qot_get_order_book_pb2.Response(s2c=s2c))


def get_broker(session: Session, c2s: qot_get_broker_pb2.C2S) -> Result:
    """3014: the broker queue of a subscribed HK code."""
    what = "Qot_GetBroker"
    code = _one_code(session, c2s, what)
    if not isinstance(code, str):
        return code
    if not code.startswith("HK."):
        return fail(f"{what}: the broker queue is for HK securities only, not {code}")
    if (code, BROKER) not in session.subs:
        return _not_subscribed([code], BROKER, "its broker queue")
    return ok(qot_get_broker_pb2.Response(s2c=session.server.states.broker_queue(code)))
