"""The bridge and the bus against a real nats-server and the real simulator (asyncio only)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import anyio
import pytest

import aiofutu
from aiofutu import bridge, bus
from aiofutu._pb import qot_common_pb2
from aiofutu.bridge import _subjects

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from aiofutu.sim import Simulator

    from .conftest import NatsServer

nats = pytest.importorskip("nats")

LOW32 = 0xFFFFFFFF
CODE = "HK.00700"
POLICY = aiofutu.ReconnectPolicy(initial_delay=0.05, max_delay=0.5)


@contextlib.asynccontextmanager
async def running_bridge(
    opend: Simulator, url: str, *codes: str, **options: Any
) -> AsyncIterator[bridge.Bridge]:
    async with (
        aiofutu.connect(opend.host, opend.port, reconnect=POLICY) as client,
        anyio.create_task_group() as tg,
    ):
        handle = await tg.start(lambda task_status: bridge.run(
            client, url, codes=codes or (CODE,), task_status=task_status, **options
        ))  # fmt: skip
        assert await handle.publisher.drain(20)  # the startup backfill is stored
        try:
            yield handle
        finally:
            tg.cancel_scope.cancel()


def bridge_process(opend: Simulator, url: str, code: str = CODE) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "aiofutu", "bridge", "--nats", url, "--codes", code,
         "--port", str(opend.port), "--dupe-window", "2m"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def sigkill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


async def collect(stream: bus.BusStream, n: int, timeout: float = 20) -> list[aiofutu.Ticker]:
    got: list[aiofutu.Ticker] = []
    with anyio.fail_after(timeout):
        async for tick in stream:
            got.append(tick)
            if len(got) >= n:
                break
    return got


async def stored_messages(url: str, stream: str = "FUTU") -> int:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().stream_info(stream)
        return int(info.state.messages)
    finally:
        await nc.close()


async def stored_at_least(url: str, n: int, timeout: float = 30) -> None:
    """Wait until the stream exists and holds ``n`` messages (a bridge's startup backfill).

    A bridge killed during its backfill of OpenD's 1000 recent ticks loses, for good, those that
    OpenD no longer keeps when the next bridge starts: a real hole (reported as a Gap), not
    what these tests are about.
    """
    nc = await nats.connect(url)
    try:
        with anyio.fail_after(timeout):
            while True:
                try:
                    info = await nc.jetstream().stream_info("FUTU")
                    if info.state.messages >= n:
                        return
                except nats.js.errors.NotFoundError:
                    pass
                await anyio.sleep(0.05)
    finally:
        await nc.close()


def assert_tape(ticks: list[aiofutu.Ticker]) -> None:
    """HK: consecutive trade counters, each once (no loss, no duplicate, in order)."""
    counters = [t.sequence & LOW32 for t in ticks]
    assert counters == list(range(counters[0], counters[0] + len(counters)))


async def wait_for(predicate: Any, timeout: float = 20) -> None:
    with anyio.fail_after(timeout):
        while not predicate():  # noqa: ASYNC110
            await anyio.sleep(0.02)


# -- the contract ------------------------------------------------------------------------------


def test_subject_encoding_is_reversible() -> None:
    assert bridge.subject("ticker", "HK.00700") == "futu.ticker.HK.00700"
    assert bridge.subject("ticker", "US..DJI") == "futu.ticker.US.%2EDJI"
    for code in ("HK.00700", "US..DJI", "US.BRK.B", "US.A*>%", "SH.600519"):
        assert bridge.parse_subject(bridge.subject("ticker", code)) == ("ticker", code)
    with pytest.raises(bridge.MalformedMessage):
        bridge.parse_subject("futu.ticker.HK")
    with pytest.raises(aiofutu.ConfigurationError):
        bridge.subject("quote", "HK.00700")  # not wired yet: one row of KINDS away


def _tick(**changes: Any) -> aiofutu.Ticker:
    base: dict[str, Any] = {
        "code": "US.AAPL", "name": "Apple", "sequence": 1_700_000_000, "time": "10:00:00",
        "price": 190.5, "volume": 100, "turnover": 19050.0,
        "ticker_direction": aiofutu.TickerDirection.BUY, "type": aiofutu.TickerType.AUTO_MATCH,
        "timestamp": 1_700_000_000.0, "recv_time": 1_700_000_000.2,
    }  # fmt: skip
    base.update(changes)
    return aiofutu.Ticker(**base)


def test_msg_id_from_the_trade_alone() -> None:
    tick = _tick()
    again = _tick(recv_time=1_700_000_009.9, push_data_type=aiofutu.PushDataType.CACHE)
    assert bridge.ticker_msg_id(tick) == bridge.ticker_msg_id(again)  # receive time excluded
    assert bridge.ticker_msg_id(tick).startswith("US.AAPL:1700000000:")
    other = _tick(price=190.51)  # another trade in the same second shares the US sequence
    assert bridge.ticker_msg_id(other) != bridge.ticker_msg_id(tick)
    body = bridge.encode_ticker(tick)
    pb = qot_common_pb2.Ticker.FromString(body)  # OpenD's own message
    assert pb.sequence == tick.sequence and pb.price == tick.price
    assert bridge.decode_ticker("US.AAPL", "Apple", body) == tick


async def test_bus_under_trio_is_refused() -> None:
    """nats-py is asyncio-only: on trio a clear ConfigurationError, not a crash inside nats."""
    with pytest.raises(aiofutu.ConfigurationError, match="asyncio"):
        async with bus.subscribe("nats://127.0.0.1:1", [CODE]):
            pass


@pytest.fixture
def trio_backend() -> str:
    return "trio"


test_bus_under_trio_is_refused = pytest.mark.parametrize("anyio_backend", ["trio"])(
    test_bus_under_trio_is_refused
)


# -- end to end --------------------------------------------------------------------------------


async def test_ticks_reach_the_bus_once_in_order(opend: Simulator, nats_server: NatsServer) -> None:
    async with (
        aiofutu.connect(opend.host, opend.port) as direct,
        direct.ticker_stream(CODE, "US.AAPL", is_first_push=False) as expected_stream,
        running_bridge(opend, nats_server.url, CODE, "US.AAPL") as handle,
        bus.subscribe(nats_server.url, [CODE, "US.AAPL"], since="new") as ticks,
    ):
        await opend.burst(CODE, 300, ticks_per_push=3)
        await opend.burst("US.AAPL", 200)
        got = await collect(ticks, 500)
        expected = [await anext(expected_stream) for _ in range(500)]
        for code in (CODE, "US.AAPL"):  # the same models, field for field, in order per code
            assert [t for t in got if t.code == code] == [t for t in expected if t.code == code]
        assert_tape([t for t in got if t.code == CODE])
        assert await handle.publisher.drain(10)
        stats = handle.stats()
        assert stats.published == 2000 + 500  # the startup backfills (1000 each), the bursts
        assert stats.dropped == 0 and stats.pending_acks == 0
        assert ticks.malformed == 0 and ticks.gaps == [] and ticks.late_fills == 0
        assert 0 < time.time() - ticks.last_published < 30  # the bridge's Futu-Published
        # the contract, read with plain nats-py
        nc = await nats.connect(nats_server.url)
        try:
            raw = await nc.jetstream().get_last_msg("FUTU", "futu.ticker.HK.00700")
        finally:
            await nc.close()
        last = [t for t in got if t.code == CODE][-1]
        assert raw.headers[_subjects.HEADER_SEQUENCE] == str(last.sequence)
        assert raw.headers[_subjects.HEADER_CODE] == CODE
        assert raw.headers[_subjects.MSG_ID] == bridge.ticker_msg_id(last)
        assert float(raw.headers[_subjects.HEADER_PUBLISHED]) > 0
        assert qot_common_pb2.Ticker.FromString(raw.data).sequence == last.sequence


async def test_malformed_messages_are_counted_and_skipped(
    opend: Simulator, nats_server: NatsServer
) -> None:
    async with (
        running_bridge(opend, nats_server.url),
        bus.subscribe(nats_server.url, [CODE]) as ticks,
    ):
        await opend.burst(CODE, 5)
        first = await collect(ticks, 5)
        nc = await nats.connect(nats_server.url)
        try:
            js = nc.jetstream()
            await js.publish("futu.ticker.HK.00700", b"\xff\xff not protobuf")  # no headers
            good = {**_subjects.headers("ticker", first[-1]), "Nats-Msg-Id": "junk-1"}
            await js.publish("futu.ticker.HK.00700", b"\xff\xff\xff", headers=good)
            bad_seq = {**good, _subjects.HEADER_SEQUENCE: "12x", "Nats-Msg-Id": "junk-2"}
            await js.publish(
                "futu.ticker.HK.00700", bridge.encode_ticker(first[-1]), headers=bad_seq
            )
        finally:
            await nc.close()
        await opend.burst(CODE, 5)
        more = await collect(ticks, 5)
        assert_tape(first + more)
        assert ticks.malformed == 3


async def test_bridge_killed_and_restarted_mid_burst(
    opend: Simulator, nats_server: NatsServer
) -> None:
    """SIGKILL mid-burst, the market goes on, a new bridge backfills: no loss, no duplicate."""
    async with (
        aiofutu.connect(opend.host, opend.port) as direct,
        direct.ticker_stream(CODE, is_first_push=False) as truth,
        anyio.create_task_group() as tg,
    ):
        proc = bridge_process(opend, nats_server.url)
        try:
            await stored_at_least(nats_server.url, 1000)  # its startup backfill is in
            async with bus.subscribe(nats_server.url, [CODE], since="all") as ticks:
                produced = 0

                async def market(n: int) -> None:
                    nonlocal produced
                    for _ in range(n):
                        await opend.burst(CODE, 10)
                        produced += 10
                        await anyio.sleep(0.01)

                await market(10)
                await wait_for(lambda: ticks.received >= 50)
                sigkill(proc)  # mid-burst: the market goes on without it
                tg.start_soon(market, 20)
                await anyio.sleep(0.3)
                proc = bridge_process(opend, nats_server.url)
                await wait_for(lambda: produced >= 300)
                seen = [await anext(truth) for _ in range(300)]
                with anyio.fail_after(30):
                    got: list[aiofutu.Ticker] = []
                    async for tick in ticks:
                        got.append(tick)
                        if tick.sequence == seen[-1].sequence:
                            break
                assert_tape(got)
                assert {t.sequence for t in seen} <= {t.sequence for t in got}
                assert ticks.gaps == [] and ticks.late_fills == 0
                assert await stored_messages(nats_server.url) == len(got)
        finally:
            sigkill(proc)


async def test_two_bridges_one_killed(opend: Simulator, nats_server: NatsServer) -> None:
    async with (
        aiofutu.connect(opend.host, opend.port) as direct,
        direct.ticker_stream(CODE, is_first_push=False) as truth,
    ):
        a = bridge_process(opend, nats_server.url)
        b = bridge_process(opend, nats_server.url)
        try:
            await stored_at_least(nats_server.url, 1000)
            await anyio.sleep(1.0)  # both subscribed and past their backfill
            async with bus.subscribe(nats_server.url, [CODE], since="all") as ticks:
                for i in range(30):
                    await opend.burst(CODE, 10)
                    if i == 10:
                        sigkill(a)
                    await anyio.sleep(0.01)
                seen = [await anext(truth) for _ in range(300)]
                with anyio.fail_after(30):
                    got: list[aiofutu.Ticker] = []
                    async for tick in ticks:
                        got.append(tick)
                        if tick.sequence == seen[-1].sequence:
                            break
                assert_tape(got)
                assert {t.sequence for t in seen} <= {t.sequence for t in got}
                await anyio.sleep(0.3)  # b's duplicates are in
                assert await stored_messages(nats_server.url) == len(got)
        finally:
            sigkill(a)
            sigkill(b)


async def test_broker_restart_with_file_store(opend: Simulator, nats_server: NatsServer) -> None:
    """The broker goes away for a moment: the bridge re-sends, the consumer resumes."""
    async with (
        running_bridge(opend, nats_server.url, ack_timeout=0.5) as handle,
        bus.subscribe(nats_server.url, [CODE]) as ticks,
    ):
        await opend.burst(CODE, 100)
        before = await collect(ticks, 100)
        await anyio.to_thread.run_sync(nats_server.restart)
        await opend.burst(CODE, 100)  # while NATS comes back: queued by the bridge
        after = await collect(ticks, 100, timeout=30)
        assert_tape(before + after)
        assert handle.stats().dropped == 0


async def test_slow_consumer_follows_its_overflow_policy(
    opend: Simulator, nats_server: NatsServer
) -> None:
    async with (
        running_bridge(opend, nats_server.url),
        bus.subscribe(nats_server.url, [CODE], buffer=50, overflow="raise") as strict,
        bus.subscribe(nats_server.url, [CODE], buffer=50, overflow="drop_oldest") as lossy,
    ):
        await opend.burst(CODE, 200)
        await wait_for(lambda: strict.received >= 200 and lossy.received >= 200)
        kept = [await anext(strict) for _ in range(50)]
        with pytest.raises(aiofutu.SlowConsumer) as caught:
            await anext(strict)
        assert caught.value.lost == 150
        assert_tape(kept)
        assert lossy.dropped == 150 and lossy.pending == 50
        newest = [await anext(lossy) for _ in range(50)]
        assert_tape(newest)
        assert newest[-1].sequence == kept[0].sequence + 199


async def test_late_fill_is_reordered_or_announced(nats_server: NatsServer) -> None:
    """A hole filled by a second bridge after newer ticks: held and put back in order within
    the reorder window, delivered and announced as a late fill after it."""
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(name="FUTU", subjects=["futu.>"])
    base = (7 << 32) + 100
    ticks = [_tick(code=CODE, name="TENCENT", sequence=base + i, price=300 + i) for i in range(8)]

    async def put(i: int) -> None:
        tick = ticks[i]
        await js.publish(
            bridge.subject("ticker", CODE),
            bridge.encode_ticker(tick),
            headers=_subjects.headers("ticker", tick),
        )

    try:
        late: list[aiofutu.Ticker] = []
        async with bus.subscribe(
            nc, [CODE], since="all", reorder_window=2.0, on_late_fill=late.append
        ) as stream:
            for i in (0, 1, 3, 2):  # 2 comes after 3
                await put(i)
            got = await collect(stream, 4)
            assert [t.sequence for t in got] == [base, base + 1, base + 2, base + 3]
            assert stream.gaps == [] and late == []
        async with bus.subscribe(
            nc, [CODE], since="all", reorder_window=0.1, on_late_fill=late.append
        ) as stream:
            for i in (4, 6, 7):
                await put(i)
            got = await collect(stream, 7)
            assert [t.sequence - base for t in got] == [0, 1, 2, 3, 4, 6, 7]
            await put(5)  # long after its hole was reported
            fill = await collect(stream, 1)
            assert fill[0].sequence == base + 5 and stream.is_late(fill[0])
            assert late == fill and stream.late_fills == 1
            assert stream.gaps == [aiofutu.Gap(CODE, base + 4, base + 6, 1)]
    finally:
        await nc.close()


async def test_restart_after_an_outage_longer_than_the_dupe_window(
    opend: Simulator, nats_server: NatsServer
) -> None:
    """Msg ids are forgotten after the window: the bridge asks the stream what it holds."""
    async with running_bridge(opend, nats_server.url, duplicate_window=0.5):
        await opend.burst(CODE, 50)
        await stored_at_least(nats_server.url, 1050)
    await anyio.sleep(1.0)  # longer than the window: JetStream no longer knows these ids
    await opend.burst(CODE, 50)  # while no bridge runs
    async with running_bridge(opend, nats_server.url, duplicate_window=0.5) as handle:
        stats = handle.stats()
        assert stats.duplicates == 0 and stats.skipped == 950  # OpenD's 1000 less the 50 new
        assert stats.published == 50
    async with bus.subscribe(nats_server.url, [CODE], since="all") as ticks:
        got = await collect(ticks, 1100)
    assert_tape(got)
    assert await stored_messages(nats_server.url) == 1100


# -- trades that share a sequence (US sequences may carry only the second) ---------------------


async def test_same_second_trades_reach_the_bus_once_across_a_bridge_restart(
    nats_server: NatsServer,
) -> None:
    """All trades of one second share a US sequence (the us-seconds scenario): a restarted
    bridge's backfill sends those after the last one stored and no other, and the live ticks
    at the backfill's newest sequence that it did not send are published, not skipped."""
    us = "US.AAPL"
    async with aiofutu.sim.serve(
        port=0, tick_rate=0, codes=(us,), scenario="us-seconds", unsub_min_age=0
    ) as opend:
        sec = opend.market.security(us)
        async with running_bridge(opend, nats_server.url, us) as handle:
            async with bus.subscribe(nats_server.url, [us], since="new") as ticks:
                await opend.burst(us, 300, ticks_per_push=3)
                got = await collect(ticks, 300)
                assert await handle.publisher.drain(10)
                sec.generate(200, now=sec.last_ts)  # the same second, while no bridge runs
        async with running_bridge(opend, nats_server.url, us) as handle:
            assert handle.stats().published == 200  # the 300 stored are not sent again
            async with bus.subscribe(nats_server.url, [us], since="new") as ticks:
                live = sec.generate(50, now=sec.last_ts)  # the backfill's newest sequence
                opend.push_ticks(sec, live)
                got += await collect(ticks, 50)
                assert await handle.publisher.drain(10)
                stats = handle.stats()
                assert stats.published == 250 and stats.duplicates == 0
    tape = opend.market.history(us)[-550:]
    assert len({t.sequence for t in tape}) == 1
    expected = tape[:300] + tape[-50:]
    assert [(t.sequence, t.time, t.price, t.volume) for t in got] == [
        (t.sequence, t.time, t.price, t.volume) for t in expected
    ]
