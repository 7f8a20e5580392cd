"""Serving a recording as live pushes: ``aiofutu sim --replay ticks.parquet --speed 10``.

Every field of each recorded tick goes back on the wire unchanged (sequence, time string,
timestamp, ...); only the pacing is the simulator's: the gaps between recorded ``timestamp``
values, divided by ``speed`` (0 = no waiting, with backpressure so nothing is dropped). The
replay starts at the first TICKER push registration of a recorded code, so a bot that connects
after the server started still sees the whole day.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, NamedTuple

import anyio
import anyio.lowlevel

from .._pb import qot_common_pb2
from ..enums import PushDataType, TickerType

if TYPE_CHECKING:
    from ..models import Ticker
    from ._market import SecurityState
    from ._server import Simulator

__all__ = ("Replay", "ticker_to_pb")

logger = logging.getLogger("aiofutu.sim")

#: Ticks of one security pushed together before the next clock check (one tick per message).
_BATCH = 1000


def ticker_to_pb(tick: Ticker) -> qot_common_pb2.Ticker:
    """The wire form of a :class:`~aiofutu.Ticker`; absent optional fields stay absent."""
    pb = qot_common_pb2.Ticker(
        time=tick.time,
        sequence=tick.sequence,
        dir=tick.ticker_direction.wire,
        price=tick.price,
        volume=tick.volume,
        turnover=tick.turnover,
        recvTime=tick.recv_time,
        typeSign=tick.type_sign,
        timestamp=tick.timestamp,
    )
    if tick.type is not TickerType.NA:
        pb.type = tick.type.wire
    if tick.push_data_type is not PushDataType.NA:
        pb.pushDataType = tick.push_data_type.wire
    if tick.hp_volume is not None:
        pb.hpVolume = tick.hp_volume
    return pb


class _Row(NamedTuple):
    sec: SecurityState
    tick: qot_common_pb2.Ticker


class Replay:
    """The recorded ticks of a simulator and the task that plays them."""

    def __init__(self, server: Simulator, source: str | os.PathLike[str]) -> None:
        from ..record import read_recording

        self.server = server
        self.source = os.fspath(source)
        ticks = read_recording(source)
        market = server.market
        rows: list[_Row] = []
        named: set[str] = set()
        for tick in ticks:
            if not market.knows(tick.code):
                market.add(tick.code)  # a recorded security exists, whatever the list says
            sec = market.security(tick.code)
            if tick.code not in named:
                named.add(tick.code)
                sec.name = tick.name  # before the first push builds its encoder
            rows.append(_Row(sec, ticker_to_pb(tick)))
        self.rows = rows
        self.codes = frozenset(row.sec.code for row in rows)
        self.pushed = 0
        self._started: anyio.Event | None = None
        self._done: anyio.Event | None = None
        logger.info("replay of %s: %d ticks of %s", self.source, len(rows), sorted(self.codes))

    def open(self) -> None:
        """Make the events (they need the running event loop); called as the server starts."""
        self._started = anyio.Event()
        self._done = anyio.Event()

    @property
    def started(self) -> anyio.Event:
        """Set at the first TICKER push registration of a recorded code (or by :meth:`start`)."""
        assert self._started is not None, "the simulator is not running"
        return self._started

    @property
    def done(self) -> anyio.Event:
        """Set once every recorded tick was pushed."""
        assert self._done is not None, "the simulator is not running"
        return self._done

    def start(self) -> None:
        """Begin playing now (otherwise the first push registration starts it)."""
        self.started.set()

    async def run(self) -> None:
        """Play every row, paced by ``timestamp`` divided by ``config.speed``."""
        await self.started.wait()
        server = self.server
        speed = server.config.speed
        rows = self.rows
        clock0 = anyio.current_time()
        ts0 = next((r.tick.timestamp for r in rows if r.tick.timestamp), 0.0)
        latest = ts0
        i = 0
        while i < len(rows):
            sec = rows[i].sec
            if speed > 0:
                latest = max(latest, rows[i].tick.timestamp)
                due = clock0 + (latest - ts0) / speed
                if due > anyio.current_time():
                    await anyio.sleep_until(due)
            now = anyio.current_time()
            j = i + 1
            while j < len(rows) and j - i < _BATCH and rows[j].sec is sec:
                ts = rows[j].tick.timestamp
                if speed > 0 and clock0 + (max(latest, ts) - ts0) / speed > now:
                    break
                latest = max(latest, ts)
                j += 1
            ticks = [row.tick for row in rows[i:j]]
            sec.store(ticks)
            server.push_ticks(sec, ticks)
            self.pushed += len(ticks)
            i = j
            await server.wait_room(sec.code)
            await anyio.lowlevel.checkpoint()
        logger.info("replay of %s finished: %d ticks", self.source, self.pushed)
        self.done.set()
