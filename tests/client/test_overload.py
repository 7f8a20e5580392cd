"""Steady overload over real sockets: a consumer slower than the feed, for every policy.

The simulator pushes 400 ticks/s of HK.00700 live; the consumer spends 5 ms per tick (sync
work that blocks the loop, or an ``await anyio.sleep``), so it keeps falling behind: not one
burst but a steady excess. Whatever the policy, every tick that reached the stream is either
delivered or reported lost, and each hole in the delivered tape is reported at the very next
iteration, before the tick after it (HK's trade counter shows the holes exactly).
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import aiofutu
from aiofutu import SlowConsumer, sim
from aiofutu.streams import Overflow

pytestmark = pytest.mark.anyio
BOTH_TRANSPORTS = True

HK = "HK.00700"
LOW32 = 0xFFFFFFFF
RATE = 400.0
SECONDS = 1.5
POLICIES: list[Overflow] = ["raise", "drop_oldest", "block"]


@pytest.fixture
def opend_options(transport: str) -> dict[str, Any]:
    options: dict[str, Any] = {"tick_rate": RATE, "seed": 7, "codes": (HK,)}
    if transport == "websocket":
        options["websocket_port"] = 0
    return options


async def _work(kind: str, seconds: float) -> None:
    if kind == "sync":  # CPU-bound work: the loop (and the reader) cannot run meanwhile
        time.sleep(seconds)  # noqa: ASYNC251 (on purpose: it stands for that work)
        await anyio.lowlevel.checkpoint()
    else:
        await anyio.sleep(seconds)


class _Log:
    """What the consumer saw, in order: ("tick", trade counter) and ("lost", n reported)."""

    def __init__(self, stream: aiofutu.TickerStream | aiofutu.TickerFrameStream) -> None:
        self.stream = stream
        self.events: list[tuple[str, int]] = []
        self.frames: list[list[int]] = []
        self._dropped = 0

    def lost(self, n: int) -> None:
        self.events.append(("lost", n))

    def got(self, counters: list[int]) -> None:
        if self.stream.overflow == "drop_oldest":  # that policy reports through ``dropped``
            delta = self.stream.dropped - self._dropped
            if delta:
                self.events.append(("lost", delta))
                self._dropped = self.stream.dropped
        self.events.extend(("tick", c) for c in counters)

    def check(self) -> None:
        stream = self.stream
        ticks = [c for kind, c in self.events if kind == "tick"]
        reported = sum(n for kind, n in self.events if kind == "lost")
        assert stream.pending == 0
        assert len(ticks) + reported == stream.received  # nothing unaccounted for
        assert stream.dropped == reported  # and ``dropped`` is exactly what was reported
        assert stream.gaps == []  # the feed itself lost nothing
        if stream.overflow == "block":
            assert reported == 0
        else:
            assert stream.dropped > 0  # the consumer really was slower than the feed
        if stream.overflow == "raise":
            raised = [n for kind, n in self.events if kind == "lost"]
            assert len(raised) >= 2  # steady overload: hole after hole, each one raised
        # every hole between two delivered ticks was reported right before the second
        prev: int | None = None
        lost_here = 0
        holes = 0
        for kind, value in self.events:
            if kind == "lost":
                lost_here += value
                continue
            if prev is not None:
                assert value - prev - 1 == lost_here, (prev, value, lost_here)
                holes += value != prev + 1
            prev, lost_here = value, 0
        for rows in self.frames:  # a frame never spans a hole
            assert rows == list(range(rows[0], rows[0] + len(rows)))
        if stream.overflow != "block":
            assert holes >= 1


async def _catch_up(log: _Log, step: Any) -> None:
    """Read at full speed until nothing has come for a while (the feed is stopped)."""
    with anyio.fail_after(30):
        while True:
            with anyio.move_on_after(0.5) as idle:
                try:
                    await step()
                except SlowConsumer as exc:
                    log.lost(exc.lost)
            if idle.cancelled_caught:
                return


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("work", ["sync", "sleep"])
async def test_ticker_stream_under_steady_overload(
    client: aiofutu.Client, server: sim.Simulator, policy: Overflow, work: str
) -> None:
    """The issue's reproduction: buffer=50, 400 ticks/s, 5 ms per tick."""
    async with client.ticker_stream(HK, buffer=50, overflow=policy, is_first_push=False) as stream:
        log = _Log(stream)
        end = time.monotonic() + SECONDS
        while time.monotonic() < end:
            try:
                async for tick in stream:
                    log.got([tick.sequence & LOW32])
                    await _work(work, 0.005)
                    if time.monotonic() >= end:
                        break
            except SlowConsumer as exc:
                log.lost(exc.lost)
        server.market_hours = "closed"  # the feed stops; whatever is in flight still arrives

        async def step() -> None:
            tick = await stream.__anext__()
            log.got([tick.sequence & LOW32])

        await _catch_up(log, step)
        log.check()


@pytest.mark.parametrize("policy", POLICIES)
async def test_ticker_frames_under_steady_overload(
    client: aiofutu.Client, server: sim.Simulator, policy: Overflow
) -> None:
    """Frames of at most 10 rows, 50 ms of work per frame: 200 rows/s for a 400/s feed."""
    async with client.ticker_frames(
        [HK], max_rows=10, max_latency=0.02, buffer=50, overflow=policy
    ) as frames:
        log = _Log(frames)

        async def step() -> None:
            df = await frames.__anext__()
            rows = [s & LOW32 for s in df["sequence"].to_list()]
            assert 1 <= len(rows) <= 10
            log.frames.append(rows)
            log.got(rows)

        end = time.monotonic() + SECONDS
        while time.monotonic() < end:
            try:
                await step()
            except SlowConsumer as exc:
                log.lost(exc.lost)
            await _work("sync", 0.05)
        server.market_hours = "closed"
        await _catch_up(log, step)
        log.check()
