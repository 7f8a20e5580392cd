"""Trades that share a sequence (US sequences may carry only the second), over real sockets.

The simulator's ``us-seconds`` scenario gives US securities OpenD's US layout: every trade of one
second has the same ``sequence``. A stream must deliver each of them once, drop only re-sends
(same sequence and trade fields) and count the rest in ``sequence_collisions``; a reconnect in
the middle of one second's trades must lose none and repeat none.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import aiofutu
from aiofutu import ClientState, ReconnectPolicy, Ticker
from aiofutu._pb import qot_common_pb2

from .conftest import Net

pytestmark = pytest.mark.anyio
#: every test here runs over TCP and over the WebSocket gateway (tests/client/conftest.py)
BOTH_TRANSPORTS = True

US = "US.AAPL"
HK = "HK.00700"
LOW = 0xFFFFFFFF


def _fields(tick: Ticker | qot_common_pb2.Ticker) -> tuple[Any, ...]:
    """What tells two trades apart (not OpenD's receive time)."""
    if isinstance(tick, Ticker):
        return (tick.sequence, tick.time, tick.price, tick.volume, tick.ticker_direction.wire)
    return (tick.sequence, tick.time, tick.price, tick.volume, tick.dir)


async def _take(stream: aiofutu.TickerStream, n: int, timeout: float = 10.0) -> list[Ticker]:
    got: list[Ticker] = []
    with anyio.fail_after(timeout):
        async for tick in stream:
            got.append(tick)
            if len(got) == n:
                break
    return got


def _us_seconds(net: Net, **options: Any) -> Any:
    return net.serve(
        port=0, tick_rate=0, codes=(US, HK), scenario="us-seconds", unsub_min_age=0, **options
    )


async def test_the_scenario_makes_us_trades_of_one_second_share_a_sequence() -> None:
    async with _us_seconds(Net("tcp")) as server:  # the simulator's tape: no client
        history = server.market.history(US)
        burst = server.market.security(US).generate(500)
        hk = server.market.generate(HK, 3)
    assert {t.sequence & LOW for t in history + burst} == {0}
    assert len({t.sequence for t in burst}) == 1  # one timestamp: one second, one sequence
    assert len({_fields(t) for t in burst}) == 500  # but 500 distinct trades
    assert len({t.sequence >> 32 for t in history}) < len(history)  # some seconds repeat
    assert len({_fields(t) for t in history}) == len(history)
    assert [t.sequence & LOW for t in hk] == [
        (hk[0].sequence & LOW) + i for i in range(3)
    ]  # HK keeps its trade counter


async def test_every_trade_arrives_and_re_sends_are_dropped(net: Net) -> None:
    async with _us_seconds(net, max_ticks=5000) as server:
        async with net.connect(server, timeout=5) as client:
            async with client.ticker_stream(US, is_first_push=False) as ticks:
                await server.burst(US, n=3000, ticks_per_push=7)
                got = await _take(ticks, 3000)
                tape = server.market.history(US)[-3000:]
                assert [_fields(t) for t in got] == [_fields(t) for t in tape]
                assert len({t.sequence for t in got}) == 1
                stats = client.stats()
                assert stats["sequence_collisions"] == 2999
                assert stats["duplicate_ticks"] == 0

                # OpenD re-sends three of them (one with another receive time), then two
                # new trades come
                sec = server.market.security(US)
                again = [tape[0], tape[1500], qot_common_pb2.Ticker()]
                again[2].CopyFrom(tape[-1])
                again[2].recvTime = 1_700_000_000.5
                new = sec.generate(2, now=sec.last_ts)  # the same second: the same sequence
                server.push_ticks(sec, [*again, *new])
                after = await _take(ticks, 2)
                assert [_fields(t) for t in after] == [_fields(t) for t in new]
                stats = client.stats()
                assert stats["duplicate_ticks"] == 3
                assert stats["sequence_collisions"] == 3001
                assert ticks.gaps == [] and ticks.dropped == 0


async def test_a_reconnect_mid_burst_loses_none_and_repeats_none(net: Net) -> None:
    """The link drops after a few hundred frames of a burst of one second's trades: the
    backfill brings the rest (all at the sequence last delivered), nothing twice."""
    policy = ReconnectPolicy(initial_delay=0.3, max_delay=0.3, jitter=0.0)
    async with _us_seconds(net) as server:
        async with net.connect(server, timeout=5, reconnect=policy) as client:
            async with client.ticker_stream(US, is_first_push=False, buffer=5000) as ticks:
                await server.burst(US, n=1, ticks_per_push=1)
                first = await _take(ticks, 1)
                server.faults.drop_after_frames = 300  # this connection dies mid-burst
                await server.burst(US, n=800, ticks_per_push=1)
                with anyio.fail_after(10):
                    while client.state is ClientState.READY:  # noqa: ASYNC110
                        await anyio.sleep(0.005)
                server.faults.drop_after_frames = 0
                before = ticks.received
                assert 0 < before < 801  # truly cut in the middle
                await client.wait_ready(timeout=10)
                await server.burst(US, n=10, ticks_per_push=1)
                got = first + await _take(ticks, 810)
                tape = server.market.history(US)[-811:]
                assert [_fields(t) for t in got] == [_fields(t) for t in tape]
                assert client.reconnects == 1
                assert ticks.gaps == [] and ticks.dropped == 0
                assert client.stats()["sequence_collisions"] >= 799
                await anyio.sleep(0.1)
                assert ticks.pending == 0  # and nothing after: no repeat
