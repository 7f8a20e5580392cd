"""Overflow accounting of streams, in memory: no tick is lost without the consumer being told.

Any interleaving of arrivals (pushes through the router, as the reader makes them) and reads
(``async for`` steps, ``drain()``), for every overflow policy, ticks and frames, one code or two:

* ``delivered + reported lost == received``, and ``dropped`` is what was reported;
* every hole in the delivered tape is reported at the very next read, before the tick after
  it: ``overflow="raise"`` raises ``SlowConsumer(lost)`` for exactly that hole,
  ``overflow="drop_oldest"`` has added exactly that many to ``dropped`` since the last read;
* a frame never spans a hole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiofutu import SlowConsumer
from aiofutu._codec import Frame
from aiofutu._pb import qot_update_ticker_pb2
from aiofutu.quotes._ticker_router import TickerRouter
from aiofutu.streams import Overflow, TickerFrameStream, TickerStream

pytestmark = pytest.mark.anyio

CODES = {"HK.00700": (1, "00700"), "US.AAPL": (11, "AAPL")}
SECOND = 1_700_000_000 << 32


class _Client:
    """What a stream needs from its client: attach to the router, detach."""

    def __init__(self, router: TickerRouter) -> None:
        self.router = router

    async def attach(self, stream: Any) -> None:
        self.router.attach(stream)

    def detach(self, stream: Any) -> None:
        self.router.detach(stream)


@dataclass
class _Feed:
    """Makes pushes and remembers each tick's place in the arrival order of the stream."""

    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CODES, 100))
    order: dict[tuple[str, int], int] = field(default_factory=dict)
    skipped: int = 0  # HK trades that never arrive (a gap on the wire, not an overflow)

    def push(self, code: str, n: int) -> Frame:
        resp = qot_update_ticker_pb2.Response(retType=0)
        resp.s2c.security.market, resp.s2c.security.code = CODES[code]
        resp.s2c.name = "N"
        for _ in range(n):
            self.counters[code] += 1
            seq = SECOND | self.counters[code]
            self.order[(code, seq)] = len(self.order)
            resp.s2c.tickerList.add(
                time="t", sequence=seq, dir=1, price=1.0, volume=1, turnover=1.0
            )
        return Frame(3011, 0, resp.SerializeToString())


_ARRIVE = st.tuples(
    st.just("arrive"),
    st.lists(st.tuples(st.sampled_from(list(CODES)), st.integers(1, 6)), min_size=1, max_size=4),
)
_OPS = st.lists(
    st.one_of(
        _ARRIVE,
        _ARRIVE,
        st.tuples(st.just("read"), st.integers(1, 8)),
        st.tuples(st.just("drain"), st.just(0)),
        st.tuples(st.just("skip"), st.integers(1, 3)),
    ),
    max_size=40,
)


async def _read(stream: Any) -> tuple[str, Any]:
    """One iteration step that does not wait: ("item", x), ("lost", n) or ("none", None)."""
    try:
        with anyio.move_on_after(0):
            return "item", await stream.__anext__()
        return "none", None
    except SlowConsumer as exc:
        return "lost", exc.lost


@given(
    ops=_OPS,
    policy=st.sampled_from(["raise", "drop_oldest", "block"]),
    frames=st.booleans(),
    two_codes=st.booleans(),
    buffer=st.integers(1, 12),
    max_rows=st.integers(1, 5),
)
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
async def test_every_loss_is_reported_in_order(
    ops: list[tuple[str, Any]],
    policy: Overflow,
    frames: bool,
    two_codes: bool,
    buffer: int,
    max_rows: int,
) -> None:
    if frames:
        pytest.importorskip("polars")
    router = TickerRouter()
    codes = ("HK.00700", "US.AAPL") if two_codes else ("HK.00700",)
    client: Any = _Client(router)
    stream: Any
    if frames:
        stream = TickerFrameStream(
            client, codes, max_rows=max_rows, max_latency=0, buffer=buffer, overflow=policy
        )
    else:
        stream = TickerStream(client, codes, buffer=buffer, overflow=policy)
    await stream.start()
    feed = _Feed()
    # what the consumer saw, in order: ("tick", arrival index) or ("lost", n reported)
    seen: list[tuple[str, int]] = []
    frame_rows: list[list[int]] = []
    last_dropped = 0

    def record(items: list[Any]) -> None:
        nonlocal last_dropped
        if policy == "drop_oldest" and stream.dropped != last_dropped:
            seen.append(("lost", stream.dropped - last_dropped))  # the report of this policy
            last_dropped = stream.dropped
        for item in items:
            if frames:
                rows = [
                    feed.order[(c, q)]
                    for c, q in zip(item["code"].to_list(), item["sequence"].to_list(), strict=True)
                ]
                assert 1 <= len(rows) <= max_rows
                frame_rows.append(rows)
                seen.extend(("tick", i) for i in rows)
            else:
                seen.append(("tick", feed.order[(item.code, item.sequence)]))

    async def steps() -> AsyncIterator[None]:
        for op, arg in ops:
            if op == "arrive":
                batch = [feed.push(code, n) for code, n in arg if code in codes]
                router.dispatch_batch(batch)
                waiter = router.flush()
                if waiter is not None:  # a full "block" stream: the reader would wait here,
                    waiter.close()  # this one reads on (the buffer grows; nothing is lost)
            elif op == "skip":
                feed.counters["HK.00700"] += arg
                feed.skipped += arg
            elif op == "read":
                for _ in range(arg):
                    kind, value = await _read(stream)
                    if kind == "lost":
                        seen.append(("lost", value))
                    elif kind == "item":
                        record([value])
            elif not frames:  # drain
                try:
                    record(stream.drain())
                except SlowConsumer as exc:
                    seen.append(("lost", exc.lost))
            yield

    async for _ in steps():
        assert stream.received == len(feed.order)
        assert stream.pending <= max(buffer, stream.received) if policy == "block" else buffer
    # the consumer catches up: everything buffered and every hole comes out
    while True:
        kind, value = await _read(stream)
        if kind == "none":
            if stream.pending:  # a consumer's turn given to the loop (time slice): read on
                continue
            break
        if kind == "lost":
            seen.append(("lost", value))
        else:
            record([value])
    record([])
    assert stream.pending == 0

    delivered = [i for kind, i in seen if kind == "tick"]
    reported = sum(n for kind, n in seen if kind == "lost")
    assert len(delivered) + reported == stream.received == len(feed.order)
    assert stream.dropped == reported
    if policy == "block":
        assert reported == 0
    # no silent hole: between two ticks, exactly the ticks lost there were reported
    expected = -1
    lost_here = 0
    for kind, value in seen:
        if kind == "lost":
            lost_here += value
            continue
        assert value - expected - 1 == lost_here, (seen, value)
        expected, lost_here = value, 0
    assert len(feed.order) - 1 - expected == lost_here
    for rows in frame_rows:  # a frame never spans a hole
        assert rows == list(range(rows[0], rows[0] + len(rows)))
    # losses on the wire are reported separately, as gaps, whatever the consumer does
    wire = sum(g.missing or 0 for g in stream.gaps)
    assert wire <= feed.skipped
    assert all(g.missing is not None for g in stream.gaps)
