"""Ticker push streams over real sockets: fan-out, order, backpressure, integrity, frames."""

from __future__ import annotations

import gc
import time

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

import aiofutu
from aiofutu import Gap, SubType, Ticker, sim

from .conftest import Net

pytestmark = pytest.mark.anyio
#: every test here runs over TCP and over the WebSocket gateway (tests/client/conftest.py)
BOTH_TRANSPORTS = True

HK = "HK.00700"
US = "US.AAPL"


async def _collect(stream: aiofutu.TickerStream, n: int, out: list[Ticker]) -> None:
    async for tick in stream:
        out.append(tick)
        if len(out) == n:
            return


def _assert_tape(ticks: list[Ticker], code: str, n: int) -> None:
    mine = [t for t in ticks if t.code == code]
    assert len(mine) == n
    counters = [t.sequence & 0xFFFFFFFF for t in mine]
    assert counters == list(range(counters[0], counters[0] + n))  # in order, none twice


async def test_two_overlapping_streams_get_every_tick_once(
    client: aiofutu.Client, server: sim.Simulator
) -> None:
    n_hk, n_us = 100_000, 5_000
    a: list[Ticker] = []
    b: list[Ticker] = []
    async with (
        client.ticker_stream(HK, US, buffer=200_000, is_first_push=False) as sa,
        client.ticker_stream(HK, buffer=200_000, is_first_push=False) as sb,
    ):
        async with anyio.create_task_group() as tg:
            tg.start_soon(_collect, sa, n_hk + n_us, a)
            tg.start_soon(_collect, sb, n_hk, b)
            await server.burst(HK, n=n_hk, ticks_per_push=10)
            await server.burst(US, n=n_us, ticks_per_push=1)
    _assert_tape(a, HK, n_hk)
    _assert_tape(a, US, n_us)
    _assert_tape(b, HK, n_hk)
    assert [t.sequence for t in b] == [t.sequence for t in a if t.code == HK]
    assert sa.dropped == sb.dropped == 0


async def test_drop_oldest_keeps_newest(client: aiofutu.Client, server: sim.Simulator) -> None:
    async with client.ticker_stream(HK, buffer=100, overflow="drop_oldest") as s:
        await server.burst(HK, n=1000, ticks_per_push=1)
        await anyio.sleep(0.1)
        assert s.pending == 100
        assert s.dropped >= 900
        kept = s.drain()
    newest = [t.sequence for t in server.market.history(HK)[-100:]]
    assert [t.sequence for t in kept] == newest


async def test_raise_reports_loss_after_buffered(
    client: aiofutu.Client, server: sim.Simulator
) -> None:
    async with client.ticker_stream(HK, buffer=100, overflow="raise", is_first_push=False) as s:
        await server.burst(HK, n=1000, ticks_per_push=1)
        await anyio.sleep(0.1)
        got: list[Ticker] = []
        with pytest.raises(aiofutu.SlowConsumer) as info:
            async for t in s:
                got.append(t)
        assert len(got) == 100
        assert info.value.lost == 900
        # the stream goes on after the error
        await server.burst(HK, n=5, ticks_per_push=1)
        more: list[Ticker] = []
        with anyio.fail_after(5):
            await _collect(s, 5, more)
        assert more[0].sequence > got[-1].sequence


async def test_block_loses_nothing(client: aiofutu.Client, server: sim.Simulator) -> None:
    got: list[Ticker] = []
    async with client.ticker_stream(HK, buffer=50, overflow="block", is_first_push=False) as s:

        async def slow() -> None:
            async for t in s:
                got.append(t)
                if len(got) % 100 == 0:
                    await anyio.sleep(0.01)
                if len(got) == 3000:
                    return

        async with anyio.create_task_group() as tg:
            tg.start_soon(slow)
            await server.burst(HK, n=3000, ticks_per_push=5)
    assert s.dropped == 0
    _assert_tape(got, HK, 3000)


@pytest.mark.parametrize("policy", ["drop_oldest", "raise"])
async def test_stalled_consumer_does_not_delay_another(
    client: aiofutu.Client, server: sim.Simulator, policy: aiofutu.streams.Overflow
) -> None:
    got: list[Ticker] = []
    async with (
        client.ticker_stream(HK, buffer=10, overflow=policy) as stalled,
        client.ticker_stream(HK, buffer=100_000, is_first_push=False) as live,
    ):
        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            tg.start_soon(_collect, live, 20_000, got)
            await server.burst(HK, n=20_000, ticks_per_push=1)
        elapsed = time.monotonic() - started
        assert stalled.pending <= 10
        assert stalled.dropped >= 19_990
    _assert_tape(got, HK, 20_000)
    assert elapsed < 20


async def test_memory_bounded_for_a_consumer_that_never_reads(
    client: aiofutu.Client, server: sim.Simulator
) -> None:
    async with client.ticker_stream(HK, buffer=1000, overflow="drop_oldest") as s:
        for _ in range(3):  # 300 times the buffer: enough to show the bound, not a soak
            await server.burst(HK, n=100_000, ticks_per_push=100)
        with anyio.fail_after(30):  # the bursts are written; the reader may still be behind
            while s.received < 300_000:  # noqa: ASYNC110 (polling a counter)
                await anyio.sleep(0.02)
        assert s.received >= 300_000  # (and the first push)
        assert s.pending == 1000
        assert s.dropped == s.received - 1000
        gc.collect()
        alive = sum(1 for o in gc.get_objects() if type(o) is Ticker)
        assert alive <= 1000 + 10


async def test_duplicate_first_push_delivered_once(
    client: aiofutu.Client, server: sim.Simulator
) -> None:
    async with client.ticker_stream(HK) as s:
        with anyio.fail_after(5):
            first = await s.__anext__()  # OpenD's first push: the latest tick
        assert first.sequence == server.market.history(HK)[-1].sequence
        # subscribing again makes OpenD push the same tick again
        await client.subscribe([HK], [SubType.TICKER], is_first_push=True)
        await server.burst(HK, n=3)
        got: list[Ticker] = []
        with anyio.fail_after(5):
            await _collect(s, 3, got)
    assert [t.sequence for t in got] == [t.sequence for t in server.market.history(HK)[-3:]]
    assert client.stats()["duplicate_ticks"] >= 1


async def test_gap_is_reported(client: aiofutu.Client, server: sim.Simulator) -> None:
    seen: list[Gap] = []
    async with client.ticker_stream(HK, on_gap=seen.append, is_first_push=False) as s:
        await server.burst(HK, n=2)
        before = server.market.history(HK)[-1].sequence & 0xFFFFFFFF
        server.skip_ticks(HK, 5)
        await server.burst(HK, n=2)
        got: list[Ticker] = []
        with anyio.fail_after(5):
            await _collect(s, 4, got)
    assert len(s.gaps) == 1
    assert s.gaps[0].code == HK
    assert s.gaps[0].after & 0xFFFFFFFF == before
    assert s.gaps[0].before & 0xFFFFFFFF == before + 6
    assert seen == s.gaps
    assert s.gaps[0].missing == 5


async def test_ticker_frames_schema_and_max_rows(
    client: aiofutu.Client, server: sim.Simulator
) -> None:
    frames = client.ticker_frames([HK], max_rows=10_000, max_latency=0.05)
    async with frames:
        await server.burst(HK, n=25_000, ticks_per_push=10)
        total = 0
        sizes = []
        with anyio.fail_after(10):
            async for df in frames:
                sizes.append(df.height)
                total += df.height
                if total >= 25_000:
                    break
    assert max(sizes) <= 10_000
    assert total == 25_000
    assert df.columns == [*aiofutu.TICKER_COLUMNS, "push_data_type"]
    assert df["code"].unique().to_list() == [HK]


async def test_ticker_frames_max_latency(client: aiofutu.Client, server: sim.Simulator) -> None:
    async with client.ticker_frames([HK], max_rows=10_000, max_latency=0.2) as frames:
        await anyio.sleep(0.3)
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.burst, HK, 5)
            sent = time.monotonic()
            with anyio.fail_after(5):
                df = await frames.__anext__()
            waited = time.monotonic() - sent
    assert df.height >= 5
    assert waited < 0.2 + 0.5


async def test_closing_client_ends_streams(server: sim.Simulator, net: Net) -> None:
    ended: list[str] = []
    async with net.connect(server) as client:
        stream = client.ticker_stream(HK)
        await stream.start()

        async def consume() -> None:
            async for _ in stream:
                pass
            ended.append("finished")

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await anyio.sleep(0.1)
            await client.aclose()
    assert ended == ["finished"]


async def test_dropped_connection_raises_in_stream(server: sim.Simulator, net: Net) -> None:
    async with net.connect(server) as client:
        async with client.ticker_stream(HK, is_first_push=False) as stream:
            await server.burst(HK, n=3)
            await server.drop_connections()
            got: list[Ticker] = []
            with pytest.raises(aiofutu.ConnectionLost), anyio.fail_after(5):
                async for t in stream:
                    got.append(t)
            assert len(got) == 3  # buffered ticks come first


async def test_stream_without_context_manager(
    client: aiofutu.Client, server: sim.Simulator
) -> None:
    stream = client.ticker_stream(US, is_first_push=False)
    got: list[Ticker] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(_collect, stream, 3, got)
        await anyio.sleep(0.2)
        await server.burst(US, n=3)
    await stream.aclose()
    assert len(got) == 3
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()


async def test_a_restarted_simulator_is_reported_as_a_reset(net: Net) -> None:
    """A fresh simulator on the same port restarts the trade counter lower than the client saw.

    The stream must report the discontinuity (a reset ``Gap``) and deliver the new ticks, not
    drop them as duplicates of the old tape.
    """
    policy = aiofutu.ReconnectPolicy(initial_delay=0.05, max_delay=0.2)
    stop, gone = anyio.Event(), anyio.Event()

    async def first_simulator(*, task_status: anyio.abc.TaskStatus[sim.Simulator]) -> None:
        async with net.serve(port=0, tick_rate=0, codes=(HK,)) as server:
            task_status.started(server)
            await stop.wait()
        gone.set()  # its port is free again

    async with anyio.create_task_group() as tg:
        first = await tg.start(first_simulator)
        async with (
            net.connect(first, reconnect=policy) as client,
            client.ticker_stream(HK, is_first_push=False) as stream,
        ):
            await first.burst(HK, n=100)
            before: list[Ticker] = []
            with anyio.fail_after(10):
                await _collect(stream, 100, before)
            stop.set()  # OpenD goes away...
            with anyio.fail_after(10):
                await gone.wait()
            async with net.serve(**net.same_ports(first), tick_rate=0, codes=(HK,)) as second:
                await client.wait_ready(timeout=10)
                await second.burst(HK, n=5)
                fresh = [t.sequence for t in second.market.history(HK)[-5:]]
                after: list[Ticker] = []
                with anyio.fail_after(10):
                    async for tick in stream:
                        after.append(tick)
                        if tick.sequence == fresh[-1]:
                            break
    last = before[-1].sequence
    assert fresh[0] & 0xFFFFFFFF < last & 0xFFFFFFFF  # the counter did go back
    assert [t.sequence for t in after][-5:] == fresh  # the new ticks are delivered
    counters = [t.sequence & 0xFFFFFFFF for t in after]
    assert counters == list(range(counters[0], counters[0] + len(after)))  # one new tape
    assert stream.gaps == [Gap(HK, last, after[0].sequence, None, reset=True)]
    assert stream.dropped == 0


async def test_a_backlog_does_not_starve_the_loop(
    client: aiofutu.Client, server: sim.Simulator
) -> None:
    """An ``async for`` working through buffered ticks yields to other tasks now and then
    (before taking a tick, so nothing is lost), instead of holding the loop for the whole
    backlog: another task never waits long for a turn. The wait is measured in the loop
    thread's CPU (``time.thread_time``), so a busy machine does not stretch it."""
    turns = 0
    longest = 0.0
    got: list[Ticker] = []

    async def other_task() -> None:
        nonlocal turns, longest
        last = time.thread_time()
        while True:
            await anyio.lowlevel.checkpoint()
            now = time.thread_time()
            longest = max(longest, now - last)
            last = now
            turns += 1

    def work() -> None:  # what a consumer does with a tick: 3000 of them take >= 60 ms
        end = time.thread_time() + 20e-6
        while time.thread_time() < end:
            pass

    async with client.ticker_stream(HK, buffer=10_000, is_first_push=False) as s:
        await server.burst(HK, n=3000, ticks_per_push=5)
        with anyio.fail_after(10):
            while s.pending < 3000:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        async with anyio.create_task_group() as tg:
            tg.start_soon(other_task)
            await anyio.lowlevel.checkpoint()
            turns, longest = 0, 0.0
            async for t in s:  # every tick is already buffered: no wait in this loop
                got.append(t)
                work()
                if len(got) == 3000:
                    break
            tg.cancel_scope.cancel()
    _assert_tape(got, HK, 3000)
    assert turns >= 10, turns
    assert longest < 0.02, f"another task waited {longest * 1e3:.1f} ms of CPU for a turn"
