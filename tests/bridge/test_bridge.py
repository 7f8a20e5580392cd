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


def bridge_process(
    opend: Simulator,
    url: str,
    code: str = CODE,
    *options: str,
    stderr: int = subprocess.DEVNULL,
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "aiofutu", "bridge", "--nats", url, "--codes", code,
         "--port", str(opend.port), "--dupe-window", "2m", *options],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
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
        bridge.subject("nope", "HK.00700")  # not a kind of the table


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


def test_body_decodes_to_the_direct_clients_model() -> None:
    """decode_ticker builds the model the direct client's decoder builds, for bodies with and
    without each optional field (and enum numbers out of range: N/A)."""
    from aiofutu.models import tickers_from_pb

    bodies = []
    full = qot_common_pb2.Ticker(
        time="2026-12-03 10:00:00.123", sequence=(7 << 32) + 5, dir=2, price=478.2,
        volume=300, turnover=143460.0, recvTime=1.5, type=9, typeSign=66, pushDataType=2,
        timestamp=1796239396.1, hpVolume=300.25,
    )  # fmt: skip
    bodies.append(full)
    bare = qot_common_pb2.Ticker(time="10:00:00", sequence=1, dir=0, price=1.0, volume=0,
                                 turnover=0.0)  # fmt: skip
    bodies.append(bare)
    odd = qot_common_pb2.Ticker()
    odd.CopyFrom(full)
    odd.dir, odd.type, odd.pushDataType = 17, 99, 9
    bodies.append(odd)
    for pb in bodies:
        for name in ("Tencent", ""):
            want = tickers_from_pb(1, "00700", name, [pb])[0]
            got = bridge.decode_ticker("HK.00700", name, pb.SerializeToString())
            assert got == want and got.__dict__ == want.__dict__


def test_header_parser_equals_nats_py() -> None:
    """The header parser installed on our connections gives what nats-py's own gives."""
    from nats.aio.client import Client

    from aiofutu.bridge._nats import parse_header_lines

    tick = _tick(name="騰訊 控股")
    cases = [
        b"".join(f"{k}: {v}\r\n".encode() for k, v in _subjects.headers("ticker", tick).items()),
        b"A: 1\r\nB:2\r\nC:\t3 \r\n\r\n",
        b"no colon\r\nSp ace: x\r\nTab\tName: y\r\n: empty name\r\nOk: z\r\n",
        "Name: 騰訊\r\nK\u00e9y: v\r\n".encode(),
        b"Bad: \xff\xfe\r\nX\x1cY: sep\r\nDup: 1\r\nDup: 2\r\n",
        b"",
        b"\r\n\r\n",
    ]
    for raw in cases:
        assert parse_header_lines(raw) == Client._parse_header_lines(raw), raw


async def test_batched_publish_writes_what_nats_py_writes(nats_server: NatsServer) -> None:
    """The bridge's HPUB commands are byte for byte those of nats-py's own publish."""
    from aiofutu.bridge._jetstream import hpub

    nc = await nats.connect(nats_server.url)
    written: list[bytes] = []

    async def capture(cmd: bytes, priority: bool = False) -> None:
        written.append(cmd)

    try:
        nc._send_command = capture
        for tick in (_tick(), _tick(code="US..DJI", name="道瓊斯 & co", sequence=1)):
            subj = bridge.subject("ticker", tick.code)
            body = bridge.encode_ticker(tick)
            hdrs = _subjects.headers("ticker", tick)
            await nc.publish(subj, body, reply="_INBOX.x.17", headers=hdrs)
            assert written.pop() == hpub(subj, "_INBOX.x.17", body, hdrs)
    finally:
        del nc._send_command
        await nc.close()


@pytest.mark.parametrize("batched", [True, False])
async def test_publisher_stores_each_once(nats_server: NatsServer, batched: bool) -> None:
    """Both send paths (one buffer per batch; nc.publish per message, the fallback for a
    nats-py without the internals): every message stored once, re-sends de-duplicated."""
    from aiofutu.bridge._jetstream import Publisher

    nc = await nats.connect(nats_server.url)
    try:
        await nc.jetstream().add_stream(name="FUTU", subjects=["futu.>"])
        publisher = Publisher(nc, stream="FUTU", max_pending=100)
        publisher.batched = batched
        ticks = [_tick(code=CODE, name="TENCENT", sequence=(7 << 32) + i) for i in range(1000)]
        items = [
            (
                bridge.subject("ticker", t.code),
                bridge.encode_ticker(t),
                _subjects.headers("ticker", t),
            )
            for t in ticks
        ]
        async with anyio.create_task_group() as tg:
            tg.start_soon(publisher.run)
            for item in items + items[:300]:  # the first 300 twice
                publisher.offer(item)
            assert await publisher.drain(20)
            tg.cancel_scope.cancel()
        stats = publisher.snapshot()
        assert (stats.published, stats.duplicates, stats.dropped) == (1000, 300, 0)
        assert await stored_messages(nats_server.url) == 1000
    finally:
        await nc.close()


def test_headers_and_reply_subjects_are_read_strictly() -> None:
    from aiofutu.bus._consumer import _stream_sequence

    tick = _tick(code=CODE, name="騰訊", sequence=(7 << 32) + 3)
    hdrs = _subjects.headers("ticker", tick, published=1.5)
    want = ("ticker", CODE, tick.sequence, "騰訊", 1.5)
    assert _subjects.read_headers(hdrs) == want
    assert _subjects.read_headers({k: [v] for k, v in hdrs.items()}) == want  # fast_mail_parser
    assert _subjects.read_headers(hdrs, {CODE}) == want
    bad = [
        None,
        {},
        {k: v for k, v in hdrs.items() if k != _subjects.HEADER_SEQUENCE},
        {**hdrs, _subjects.HEADER_SEQUENCE: "12x"},
        {**hdrs, _subjects.HEADER_CODE: []},
        {**hdrs, _subjects.HEADER_KIND: "quote"},
        {**hdrs, _subjects.HEADER_NAME: "%E9%A8"},  # a cut UTF-8 sequence
        {**hdrs, _subjects.HEADER_CODE: "XX.1"},
    ]
    for case in bad:
        with pytest.raises(bridge.MalformedMessage):
            _subjects.read_headers(case)
    with pytest.raises(bridge.MalformedMessage):
        _subjects.read_headers(hdrs, {"US.AAPL"})

    class Msg:
        def __init__(self, reply: str | None) -> None:
            self.reply = reply

    assert _stream_sequence(Msg("$JS.ACK.FUTU.c1.1.4242.17.1796239396334000000.0")) == 4242
    assert _stream_sequence(Msg("$JS.ACK.hub.ACCHASH.FUTU.c1.1.4242.17.1796.0.tok")) == 4242
    for reply in (None, "", "_INBOX.abc", "$JS.ACK.FUTU.c1.1.x.17.1.0"):
        assert _stream_sequence(Msg(reply)) == 0


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


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_stopped_while_nats_is_down(
    opend: Simulator, nats_server: NatsServer, signum: int
) -> None:
    """SIGTERM or Ctrl-C with the broker gone: the bridge exits at once, no hang, and counts
    the ticks it took from OpenD and could not publish."""
    import re
    import threading

    proc = bridge_process(opend, nats_server.url, CODE, "--stats", "0.1", stderr=subprocess.PIPE)
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        lines.extend(line.decode() for line in proc.stderr)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def counters() -> dict[str, str]:  # of the newest --stats line
        stats = [x for x in list(lines) if "pending_acks=" in x]
        return dict(re.findall(r"(\w+)=(\w+)", stats[-1])) if stats else {}

    try:
        await wait_for(lambda: counters().get("published") == "1000", 30)  # its backfill
        await anyio.to_thread.run_sync(nats_server.stop)
        await opend.burst(CODE, 300)
        await wait_for(  # taken from OpenD, waiting for NATS
            lambda: (
                int(counters().get("queued", 0)) + int(counters().get("pending_acks", 0)) == 300
            ),
            30,
        )
        started = time.monotonic()
        os.kill(proc.pid, signum)
        await anyio.to_thread.run_sync(lambda: proc.wait(20))
        elapsed = time.monotonic() - started
        await anyio.to_thread.run_sync(lambda: reader.join(10))
        text = "".join(lines)
        assert elapsed < 5, f"took {elapsed:.1f}s to stop: {text[-800:]}"
        assert proc.returncode == 130, text[-800:]
        assert "stopped; 300 tick(s) not published" in text, text[-800:]
        assert "Traceback" not in text  # nats-py's reconnect noise is one line, not a trace
    finally:
        sigkill(proc)
        if proc.stderr is not None:
            reader.join(10)
            proc.stderr.close()


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


async def test_bus_frames_equal_the_direct_frames(
    opend: Simulator, nats_server: NatsServer
) -> None:
    """``bus.ticker_frames(url, ...)`` in place of ``client.ticker_frames(...)``: one line
    changes, the frames do not (columns, dtypes, values, order; at most max_rows each)."""
    pl = pytest.importorskip("polars")
    async with (
        aiofutu.connect(opend.host, opend.port) as direct,
        direct.ticker_frames(CODE, max_rows=100, max_latency=0.05) as expected,
        running_bridge(opend, nats_server.url),
        bus.ticker_frames(nats_server.url, CODE, max_rows=100, max_latency=0.05) as frames,
    ):
        await opend.burst(CODE, 250, ticks_per_push=5)
        got: list[Any] = []
        want: list[Any] = []
        with anyio.fail_after(20):
            while sum(len(f) for f in got) < 250:
                got.append(await anext(frames))
            while sum(len(f) for f in want) < 250:
                want.append(await anext(expected))
        assert all(0 < len(f) <= 100 for f in got)
        assert got[0].schema == want[0].schema
        assert pl.concat(got).equals(pl.concat(want))
        assert frames.gaps == [] and frames.malformed == 0


async def test_bus_frames_never_span_a_hole(opend: Simulator, nats_server: NatsServer) -> None:
    pytest.importorskip("polars")
    async with (
        running_bridge(opend, nats_server.url),
        bus.ticker_frames(
            nats_server.url, CODE, max_rows=30, max_latency=0, buffer=50, overflow="raise"
        ) as frames,
    ):
        await opend.burst(CODE, 200)
        await wait_for(lambda: frames.received >= 200)
        sizes = [len(await anext(frames)), len(await anext(frames))]
        with pytest.raises(aiofutu.SlowConsumer) as caught:
            await anext(frames)
        assert sizes == [30, 20] and caught.value.lost == 150


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


# -- durable consumers: the resume point -----------------------------------------------------

_DURABLE_CHILD = """
import sys, anyio
from aiofutu import bus

async def main(url, commit_at, idle_at):
    async with bus.subscribe(url, ["HK.00700"], since="all", durable="svc") as ticks:
        n = 0
        async for tick in ticks:
            n += 1
            print(tick.sequence & 0xFFFFFFFF, flush=True)
            if n == commit_at:
                assert await ticks.commit()
                print("committed", flush=True)
            if n == idle_at:
                await anyio.sleep(0.6)  # longer than the ack interval: the periodic ack is out
                print("idle", flush=True)
                await anyio.sleep(60)  # killed here, holding this tick

anyio.run(main, sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), backend="asyncio")
"""


def durable_child(url: str, commit_at: int, idle_at: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", _DURABLE_CHILD, url, str(commit_at), str(idle_at)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


async def _publish_tape(nc: Any, first: int, n: int) -> int:
    js = nc.jetstream()
    with contextlib.suppress(nats.js.errors.BadRequestError):
        await js.add_stream(name="FUTU", subjects=["futu.>"])
    base = (7 << 32) + 100
    for i in range(first, first + n):
        tick = _tick(code=CODE, name="TENCENT", sequence=base + i, price=300 + i)
        await js.publish(
            bridge.subject("ticker", CODE),
            bridge.encode_ticker(tick),
            headers=_subjects.headers("ticker", tick),
        )
    return base & LOW32


async def test_durable_consumer_resumes_where_the_application_was(
    nats_server: NatsServer,
) -> None:
    """Restarts of a durable consumer skip nothing and repeat nothing the application was done
    with, though the stream had taken (buffered) far more than the application had read."""
    nc = await nats.connect(nats_server.url)
    try:
        base = await _publish_tape(nc, 0, 60)
        seen: list[int] = []
        async with bus.subscribe(nc, [CODE], since="all", durable="svc") as ticks:
            async for tick in ticks:  # a clean stop after 10
                seen.append((tick.sequence & LOW32) - base)
                if len(seen) == 10:
                    await wait_for(lambda: ticks.received == 60)  # the rest is buffered
                    break
        with pytest.raises(RuntimeError, match="crash"):  # a crash while working on #20
            async with bus.subscribe(nc, [CODE], since="all", durable="svc") as ticks:
                async for tick in ticks:
                    if (tick.sequence & LOW32) - base == 20:
                        raise RuntimeError("crash")
                    seen.append((tick.sequence & LOW32) - base)
        await _publish_tape(nc, 60, 20)  # published while no consumer runs
        async with bus.subscribe(nc, [CODE], since="new", durable="svc") as ticks:
            seen.extend([(t.sequence & LOW32) - base for t in await collect(ticks, 60)])
        assert seen == list(range(80))  # #20 again (not done), then on: none twice, none lost
    finally:
        await nc.close()


async def test_durable_consumer_killed_resumes_after_its_last_ack(
    nats_server: NatsServer,
) -> None:
    """SIGKILL of a consumer process: the next one starts right after the last tick it was
    done with (committed, or acknowledged by the periodic ack), the tick it held comes again."""
    nc = await nats.connect(nats_server.url)
    try:
        base = await _publish_tape(nc, 0, 100)
    finally:
        await nc.close()

    async def run_child(commit_at: int, idle_at: int, until: str) -> list[str]:
        proc = durable_child(nats_server.url, commit_at, idle_at)
        lines: list[str] = []
        try:
            assert proc.stdout is not None
            with anyio.fail_after(30):
                while until not in lines:
                    line = await anyio.to_thread.run_sync(proc.stdout.readline)
                    assert line, f"the consumer exited early ({proc.poll()}): {lines}"
                    lines.append(line.decode().strip())
        finally:
            sigkill(proc)
            if proc.stdout is not None:
                proc.stdout.close()
        return [x for x in lines if x.isdigit()]

    first = await run_child(10, 10, "idle")  # commit() at 10, killed holding it
    second = await run_child(0, 15, "idle")  # no commit; 14 done, acked by the timer
    third = await run_child(0, 0, str(base + 99))  # the rest
    got = [int(x) - base for x in first + second + third]
    assert got == [*range(10), *range(10, 25), *range(24, 100)]


async def test_start_positions(nats_server: NatsServer) -> None:
    """since= a stream sequence, a time, a timedelta, "all" and "new" against a real stream."""
    import datetime as dt

    nc = await nats.connect(nats_server.url)
    try:
        base = await _publish_tape(nc, 0, 10)
        await anyio.sleep(0.3)
        middle = dt.datetime.now(dt.timezone.utc)
        await anyio.sleep(0.3)
        await _publish_tape(nc, 10, 10)

        async def first(since: Any, n: int) -> list[int]:
            async with bus.subscribe(nc, [CODE], since=since) as ticks:
                return [(t.sequence & LOW32) - base for t in await collect(ticks, n)]

        assert await first("all", 20) == list(range(20))
        assert await first(15, 5) == list(range(14, 19))  # stream sequence 15 is tick 14
        assert await first(middle, 10) == list(range(10, 20))
        assert await first(dt.datetime.now(dt.timezone.utc) - middle, 10) == list(range(10, 20))
        async with bus.subscribe(nc, [CODE], since="new") as ticks:
            await ticks.start()
            await _publish_tape(nc, 20, 3)
            assert [(t.sequence & LOW32) - base for t in await collect(ticks, 3)] == [20, 21, 22]
    finally:
        await nc.close()


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
