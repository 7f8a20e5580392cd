"""The simulator's series kinds, live: K-lines (3006/3007) and time share (3008/3009).

Both are folded from the same tick tape as the tickers (:mod:`aiofutu.sim.kinds.kline`,
:mod:`aiofutu.sim.kinds.rt`): a security's builders start from its tape when it is first
subscribed to a series sub type (or asked for one), and every tick made afterwards (live flow,
bursts, ``push_ticks``) is folded in, so a 1-minute bar's OHLCV and turnover are those of its
ticks, the day bar is the fold of the day and an RT point is the minute's last price and running
average. Bars older than the tape come from the seeded history (:mod:`.kinds.history`), so 3006
returns up to 1000 bars as OpenD does.

Each tick batch is pushed to every connection with push registered: one 3007 per K-line
subscription and rehab type, carrying the bars the batch touched (a bar it closed, with its
final values, then the open one), and one 3009 with the minutes it touched.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from typing import TYPE_CHECKING

import anyio.lowlevel

from .._pb import qot_common_pb2, qot_get_kl_pb2
from ..enums import ProtoId, SubType
from ..quotes._series_router import kline_sub_type
from ..quotes.kline import MAX_KL_NUM, KLType
from ._replies import RawReply
from .kinds import kline as kl
from .kinds import rt as rt_kind
from .kinds.history import history_bars

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from ._market import SecurityState
    from ._server import Simulator
    from ._session import Session
    from .kinds.basic import TickLike

__all__ = ("KL_OF_SUB", "RT", "SeriesFeed", "TimeShareBuilder")

#: K-line SubType wire value -> KLType wire value
KL_OF_SUB: dict[int, int] = {kline_sub_type(k).wire: k.wire for k in KLType if k is not KLType.NONE}
RT = SubType.RT_DATA.wire
_FORWARD = 1
_UPDATE_KL = int(ProtoId.QOT_UPDATE_KL)
_UPDATE_RT = int(ProtoId.QOT_UPDATE_RT)
_FMT = "%Y-%m-%d %H:%M:%S"
#: calendar days of history that hold ``n`` bars of a period, with room for weekends
_DAYS_PER_BAR = {2: 1.5, 3: 7.5, 4: 31.0, 11: 92.0, 5: 366.0}


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: int, data: bytes) -> bytes:
    """A length-delimited field: its tag byte, the length, the bytes."""
    return bytes((tag,)) + _varint(len(data)) + data


class TimeShareBuilder:
    """One security's time share, minute by minute, as ticks arrive (``rt_points`` folded)."""

    def __init__(self, prev_close: float) -> None:
        self.prev_close = prev_close
        self.points: list[qot_common_pb2.TimeShare] = []
        self._volume = 0
        self._turnover = 0.0

    def add(self, tick: TickLike) -> qot_common_pb2.TimeShare:
        """Fold ``tick`` in; returns the minute it went into."""
        t = kl.bar_time(1, tick.time)
        points = self.points
        if not points or points[-1].time != t:
            cur = qot_common_pb2.TimeShare(
                time=t,
                minute=int(t[11:13]) * 60 + int(t[14:16]),
                isBlank=False,
                lastClosePrice=self.prev_close,
            )
            cur.volume = 0
            cur.turnover = 0.0
            points.append(cur)
        cur = points[-1]
        self._volume += tick.volume
        self._turnover += tick.turnover
        cur.price = tick.price
        cur.volume += tick.volume
        cur.turnover = round(cur.turnover + tick.turnover, 4)
        cur.avgPrice = round(self._turnover / self._volume, 6) if self._volume else tick.price
        return cur


def _prev_close(sec: SecurityState) -> float:
    """The reference price of a security's bars: where its price walk started."""
    return float(getattr(sec, "_start", 0)) / 10_000


class SeriesFeed:
    """K-line and time-share builders of every security a series was asked of, and pushes."""

    def __init__(self, server: Simulator) -> None:
        self.server = server
        self._bars: dict[str, dict[int, kl.KLineBuilder]] = {}
        self._rt: dict[str, TimeShareBuilder] = {}
        self._history: dict[tuple[str, int], list[qot_common_pb2.KLine]] = {}
        #: encoded ``klList`` entries of the bars that no longer change, by (code, period):
        #: (closed tape bars encoded so far, the entries)
        self._encoded: dict[tuple[str, int], tuple[int, list[bytes]]] = {}

    # ---- builders -------------------------------------------------------------------------

    def ensure(self, code: str, sub_type: int) -> None:
        """Start folding ``code``'s ticks for ``sub_type`` (a K-line period or RT_DATA)."""
        if sub_type == RT:
            self.time_share(code)
        elif sub_type in KL_OF_SUB:
            self.builder(code, KL_OF_SUB[sub_type])

    def builder(self, code: str, kl_type: int) -> kl.KLineBuilder:
        """The ``kl_type`` bar builder of ``code``, made from its tape on first use."""
        per = self._bars.setdefault(code, {})
        b = per.get(kl_type)
        if b is None:
            sec = self.server.market.security(code)
            b = per[kl_type] = kl.KLineBuilder(kl_type, _prev_close(sec))
            for tick in sec.recent():
                b.add(tick)
        return b

    def time_share(self, code: str) -> TimeShareBuilder:
        """The time-share builder of ``code``, made from its tape on first use."""
        b = self._rt.get(code)
        if b is None:
            sec = self.server.market.security(code)
            b = self._rt[code] = TimeShareBuilder(_prev_close(sec))
            for tick in sec.recent():
                b.add(tick)
        return b

    def bars(self, code: str, kl_type: int, num: int) -> list[qot_common_pb2.KLine]:
        """The latest ``num`` (at most 1000) bars: seeded history, then those of the tape."""
        num = min(num, MAX_KL_NUM)
        tape = self.builder(code, kl_type).bars()
        if len(tape) >= num:
            return tape[-num:]
        first = tape[0] if tape else None
        older = self._older(code, kl_type, first)
        return (older + tape)[-num:]

    def reply(self, code: str, kl_type: int, num: int) -> RawReply:
        """The 3006 reply of ``code``'s latest ``num`` bars, from bar bytes encoded once.

        The same bytes as serialising the Response (fields in number order): the closed bars
        are encoded once each, only the open bar at every request.
        """
        num = min(num, MAX_KL_NUM)
        b = self.builder(code, kl_type)
        key = (code, kl_type)
        cached = self._encoded.get(key)
        if cached is None:
            first = b.closed[0].to_pb() if b.closed else b.current.to_pb() if b.current else None
            older = self._older(code, kl_type, first)
            cached = (0, [_field(0x12, k.SerializeToString()) for k in older])
        done, entries = cached
        closed = b.closed
        if done < len(closed):
            entries.extend(_field(0x12, f.to_pb().SerializeToString()) for f in closed[done:])
            done = len(closed)
            if len(entries) > 2 * MAX_KL_NUM:  # only the newest can be asked for
                del entries[: len(entries) - MAX_KL_NUM]
        self._encoded[key] = (done, entries)
        if b.current is None:
            latest = entries[-num:]
        else:
            latest = entries[max(len(entries) - num + 1, 0) :] if num > 1 else []
            latest.append(_field(0x12, b.current.to_pb().SerializeToString()))
        sec = self.server.market.security(code)
        s2c = b"".join(
            (
                _field(0x0A, sec.security.SerializeToString()),
                *latest,
                _field(0x1A, sec.name.encode()),
            )
        )
        return RawReply(b"\x08\x00" + _field(0x22, s2c), qot_get_kl_pb2.Response)

    def _older(
        self, code: str, kl_type: int, first: qot_common_pb2.KLine | None
    ) -> list[qot_common_pb2.KLine]:
        """Up to 1000 history bars before the tape's ``first`` bar (memoised per code, period).

        The seeded history is scaled so that its last close is where the tape's first bar
        opens: the series has no jump where the tape begins.
        """
        key = (code, kl_type)
        cached = self._history.get(key)
        if cached is None:
            sec = self.server.market.security(code)
            before = None if first is None else first.time
            end = _dt.datetime.now() if before is None else _dt.datetime.strptime(before, _FMT)
            minutes = kl.MINUTES.get(kl_type)
            if minutes is not None:  # sessions hold ~4-6 hours a weekday
                days = MAX_KL_NUM * minutes / 240 * 1.5 + 5
            else:
                days = MAX_KL_NUM * _DAYS_PER_BAR[kl_type]
            begin = end - _dt.timedelta(days=min(days, 40 * 366))
            last = (end - _dt.timedelta(seconds=1)).strftime(_FMT)
            seed = self.server.market.seed
            found = history_bars(
                seed, sec.market, sec.security.code, kl_type, begin.strftime(_FMT), last
            )
            bars = [b.to_pb() for b in found][-MAX_KL_NUM:]
            if bars and first is not None and first.HasField("openPrice") and bars[-1].closePrice:
                _scale(bars, first.openPrice / bars[-1].closePrice)
            cached = self._history[key] = bars
        return cached

    # ---- pushes ---------------------------------------------------------------------------

    def fold(
        self, sec: SecurityState, ticks: Iterable[TickLike]
    ) -> tuple[dict[int, list[qot_common_pb2.KLine]], list[qot_common_pb2.TimeShare]]:
        """Fold new ticks into ``sec``'s builders: the bars and minutes they touched."""
        ticks = list(ticks)
        touched: dict[int, list[qot_common_pb2.KLine]] = {}
        for kl_type, b in self._bars.get(sec.code, {}).items():
            out: list[qot_common_pb2.KLine] = []
            for tick in ticks:
                done, _ = b.add(tick)
                if done is not None:
                    out.append(done)
            if ticks and b.current is not None:
                out.append(b.current.to_pb())
            touched[kl_type] = out
        minutes: list[qot_common_pb2.TimeShare] = []
        rt = self._rt.get(sec.code)
        if rt is not None:
            for tick in ticks:
                point = rt.add(tick)
                if not minutes or minutes[-1] is not point:
                    minutes.append(point)
            minutes = [_copy(p) for p in minutes]
        return touched, minutes

    def pushes_for(
        self,
        session: Session,
        sec: SecurityState,
        touched: dict[int, list[qot_common_pb2.KLine]],
        minutes: list[qot_common_pb2.TimeShare],
    ) -> Iterator[tuple[int, bytes]]:
        """The (protocol id, body) pushes ``session`` gets for what a tick batch touched."""
        code = sec.code
        pushes = session.pushes
        local = sec.security.code
        for kl_type, bars in touched.items():
            key = (code, kline_sub_type(_KL[kl_type]).wire)
            if bars and key in pushes:
                for rehab in session.rehab.get(key, (_FORWARD,)):
                    body = kl.push_body(sec.market, local, kl_type, rehab, bars, sec.name)
                    yield _UPDATE_KL, body
        if minutes and (code, RT) in pushes:
            yield _UPDATE_RT, rt_kind.push_body(sec.market, local, minutes, sec.name)

    def on_ticks(self, sec: SecurityState, ticks: list[qot_common_pb2.Ticker]) -> None:
        """New ticks of ``sec`` (live flow, ``push_ticks``): fold them and push right away."""
        if sec.code not in self._bars and sec.code not in self._rt:
            return
        touched, minutes = self.fold(sec, ticks)
        if self.server.faults.stall:
            return
        for session in self.server.sessions():
            for proto_id, body in self.pushes_for(session, sec, touched, minutes):
                session.push(body, hashlib.sha1(body).digest(), proto_id)

    def first_pushes(self, session: Session, code: str, sub_type: int) -> list[tuple[int, bytes]]:
        """What OpenD re-sends on subscribing: the open bar, or the current minute."""
        sec = self.server.market.security(code)
        if sub_type == RT:
            points = self.time_share(code).points
            touched: dict[int, list[qot_common_pb2.KLine]] = {}
            minutes = [_copy(points[-1])] if points else []
        elif sub_type in KL_OF_SUB:
            kl_type = KL_OF_SUB[sub_type]
            b = self.builder(code, kl_type)
            touched = {kl_type: [b.current.to_pb()] if b.current is not None else []}
            minutes = []
        else:
            return []
        return list(self.pushes_for(session, sec, touched, minutes))

    def active(self, code: str) -> bool:
        """Whether some series of ``code`` is being folded (else its ticks need no folding)."""
        return code in self._bars or code in self._rt

    async def burst_pushes(
        self, sec: SecurityState, ticks: list[qot_common_pb2.Ticker], per_push: int
    ) -> dict[Session, list[tuple[int, bytes]]]:
        """Fold a burst's ticks ``per_push`` at a time: the pushes of each connection."""
        out: dict[Session, list[tuple[int, bytes]]] = {}
        sessions = self.server.sessions()
        for i in range(0, len(ticks), per_push):
            touched, minutes = self.fold(sec, ticks[i : i + per_push])
            for session in sessions:
                items = list(self.pushes_for(session, sec, touched, minutes))
                if items:
                    out.setdefault(session, []).extend(items)
            if i % 2_000 == 0:
                await anyio.lowlevel.checkpoint()
        return out

    @staticmethod
    async def send(session: Session, items: list[tuple[int, bytes]], high_water: int) -> None:
        """Queue ``items`` on ``session`` with backpressure (a slow reader is waited for)."""
        outbox = session.outbox
        for i, (proto_id, body) in enumerate(items):
            if i % 256 == 0 and not await outbox.wait_room(high_water):
                return
            session.push(body, hashlib.sha1(body).digest(), proto_id)
            if outbox.closed or outbox.finishing:
                return
        await outbox.drain()


_KL = {k.wire: k for k in KLType}


def _scale(bars: list[qot_common_pb2.KLine], factor: float) -> None:
    """Multiply the prices (and turnover) of ``bars`` by ``factor``, in place."""
    for b in bars:
        b.openPrice = round(b.openPrice * factor, 2)
        b.highPrice = round(b.highPrice * factor, 2)
        b.lowPrice = round(b.lowPrice * factor, 2)
        b.closePrice = round(b.closePrice * factor, 2)
        b.lastClosePrice = round(b.lastClosePrice * factor, 2)
        b.turnover = round(b.turnover * factor, 2)


def _copy(point: qot_common_pb2.TimeShare) -> qot_common_pb2.TimeShare:
    out = qot_common_pb2.TimeShare()
    out.CopyFrom(point)
    return out
