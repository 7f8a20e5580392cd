"""The request path over real sockets against the simulator."""

from __future__ import annotations

import math
import time

import anyio
import pytest

import aiofutu
from aiofutu import SubType, TickerDirection, TickerType, sim

from .conftest import Net

pytestmark = pytest.mark.anyio
#: every test here runs over TCP and over the WebSocket gateway (tests/client/conftest.py)
BOTH_TRANSPORTS = True


async def test_connect_reports_session(client: aiofutu.Client) -> None:
    assert client.connected
    assert client.conn_id > 0
    assert client.server_version > 0
    assert client.keepalive_interval > 0


async def test_get_rt_ticker_1000(client: aiofutu.Client, server: sim.Simulator) -> None:
    await client.subscribe(["HK.00700"], [SubType.TICKER])
    ticks = await client.get_rt_ticker("HK.00700", 1000)
    assert len(ticks) == 1000
    seqs = [t.sequence for t in ticks]
    assert seqs == sorted(seqs) and len(set(seqs)) == 1000
    for t in ticks:
        assert t.code == "HK.00700"
        assert t.name
        assert t.time and t.price > 0 and t.volume > 0
        assert math.isclose(t.turnover, t.price * t.volume, rel_tol=1e-9)
        assert t.ticker_direction in (
            TickerDirection.BUY,
            TickerDirection.SELL,
            TickerDirection.NEUTRAL,
        )
        assert t.type is not TickerType.NA
        assert t.timestamp > 0 and t.sequence >> 32 == int(t.timestamp)
    # the values are exactly what the simulator holds
    held = server.market.history("HK.00700")
    assert [(t.sequence, t.price, t.volume, t.time) for t in held[-1000:]] == [
        (t.sequence, t.price, t.volume, t.time) for t in ticks
    ]


async def test_get_rt_ticker_small_num(client: aiofutu.Client) -> None:
    await client.subscribe("US.AAPL", "TICKER")
    ticks = await client.get_rt_ticker("US.AAPL", 10)
    assert len(ticks) == 10
    last = await client.get_rt_ticker("US.AAPL", 1)
    assert last[0] == ticks[-1]


async def test_frames_have_sdk_columns(client: aiofutu.Client) -> None:
    await client.subscribe(["HK.00700"], [SubType.TICKER])
    ticks = await client.get_rt_ticker("HK.00700", 50)
    df = aiofutu.to_polars(ticks)
    assert tuple(df.columns) == (
        "code",
        "name",
        "time",
        "price",
        "volume",
        "turnover",
        "ticker_direction",
        "sequence",
        "type",
    )
    assert df.height == 50
    fast = await client.get_rt_ticker_frame("HK.00700", 50)
    assert fast.equals(df)


@pytest.mark.parametrize(
    ("code", "num", "error"),
    [
        ("AAPL", 10, aiofutu.InvalidCode),
        ("hk.00700", 10, aiofutu.InvalidCode),
        ("HK.", 10, aiofutu.InvalidCode),
        ("", 10, aiofutu.InvalidCode),
        ("HK.00700", 0, aiofutu.ConfigurationError),
        ("HK.00700", 1001, aiofutu.ConfigurationError),
        ("HK.00700", -5, aiofutu.ConfigurationError),
        ("HK.00700", "10", aiofutu.ConfigurationError),
        ("HK.00700", True, aiofutu.ConfigurationError),
        ("HK.00700", 2.0, aiofutu.ConfigurationError),
    ],
)
async def test_bad_arguments_fail_before_sending(
    client: aiofutu.Client, code: str, num: int, error: type[Exception]
) -> None:
    await client.subscribe(["HK.00700"], [SubType.TICKER])
    sent = client.stats()["bytes_out"]
    with pytest.raises(error) as info:
        await client.get_rt_ticker(code, num)
    assert isinstance(info.value, ValueError)
    assert client.stats()["bytes_out"] == sent
    assert client.connected


async def test_invalid_code_message_shows_expected_form(client: aiofutu.Client) -> None:
    with pytest.raises(aiofutu.InvalidCode, match=r"'AAPL'.*HK\.00700"):
        await client.subscribe(["AAPL"], [SubType.TICKER])


async def test_unsubscribed_code_requires_subscription(client: aiofutu.Client) -> None:
    sent = client.stats()["bytes_out"]
    with pytest.raises(aiofutu.SubscriptionRequired) as info:
        await client.get_rt_ticker("HK.00700", 10)
    assert info.value.code == "HK.00700"
    assert "subscribe" in str(info.value)
    assert client.stats()["bytes_out"] == sent


async def test_opend_refusal_is_opend_error(client: aiofutu.Client) -> None:
    await client.subscribe(["HK.00700"], [SubType.TICKER])
    # the simulator enforces OpenD's one-minute rule
    with pytest.raises(aiofutu.OpenDError) as info:
        await client.unsubscribe(["HK.00700"], [SubType.TICKER])
    err = info.value
    assert err.proto_id == aiofutu.ProtoId.QOT_SUB
    assert err.ret_type != 0
    assert "minute" in err.ret_msg
    # the local record is unchanged, since OpenD refused
    assert SubType.TICKER in client.subscriptions()["HK.00700"]
    assert len(await client.get_rt_ticker("HK.00700", 5)) == 5


async def test_unsubscribe_after_min_age(net: Net) -> None:
    async with (
        net.serve(port=0, tick_rate=0, unsub_min_age=0.0) as srv,
        net.connect(srv) as client,
    ):
        await client.subscribe(["HK.00700", "US.AAPL"], [SubType.TICKER])
        info = await client.query_subscription()
        assert sorted(info.sub_list[SubType.TICKER]) == ["HK.00700", "US.AAPL"]
        await client.unsubscribe(["HK.00700"], [SubType.TICKER])
        assert list(client.subscriptions()) == ["US.AAPL"]
        with pytest.raises(aiofutu.SubscriptionRequired):
            await client.get_rt_ticker("HK.00700", 5)
        await client.unsubscribe_all()
        assert client.subscriptions() == {}
        info = await client.query_subscription()
        assert info.sub_list.get(SubType.TICKER, []) == []


async def test_1000_concurrent_requests(client: aiofutu.Client) -> None:
    await client.subscribe(["HK.00700"], [SubType.TICKER])
    results: dict[int, int] = {}

    async def one(i: int) -> None:
        num = i % 1000 + 1
        ticks = await client.get_rt_ticker("HK.00700", num)
        results[i] = len(ticks)

    async with anyio.create_task_group() as tg:
        for i in range(1000):
            tg.start_soon(one, i)
    assert results == {i: i % 1000 + 1 for i in range(1000)}
    assert client.stats()["pending_requests"] == 0


async def test_timeout_then_connection_still_usable(server: sim.Simulator, net: Net) -> None:
    async with net.connect(server, timeout=5) as client:
        await client.subscribe(["HK.00700"], [SubType.TICKER])
        server.reply_delay = 0.5
        with pytest.raises(aiofutu.RequestTimeout) as info:
            await client.get_rt_ticker("HK.00700", 10, timeout=0.1)
        assert isinstance(info.value, TimeoutError)
        assert info.value.proto_id == aiofutu.ProtoId.QOT_GET_TICKER
        server.reply_delay = 0.0
        await anyio.sleep(0.6)  # the late reply arrives and is dropped
        assert len(await client.get_rt_ticker("HK.00700", 10)) == 10
        assert client.stats()["unmatched_replies"] >= 1


async def test_each_request_times_out_at_its_own_deadline(server: sim.Simulator, net: Net) -> None:
    """Deadlines given in any order (long, short, middle) each fire on time, no sooner."""
    async with net.connect(server, timeout=5) as client:
        await client.subscribe(["HK.00700"], [SubType.TICKER])
        server.reply_delay = 2.0
        took: dict[float, float] = {}

        async def timed(timeout: float) -> None:
            started = anyio.current_time()
            with pytest.raises(aiofutu.RequestTimeout):
                await client.get_rt_ticker("HK.00700", 5, timeout=timeout)
            took[timeout] = anyio.current_time() - started

        async with anyio.create_task_group() as tg:
            for timeout in (0.6, 0.15, 0.35):
                tg.start_soon(timed, timeout)
        for timeout, elapsed in took.items():
            assert timeout <= elapsed < timeout + 0.25, (timeout, elapsed)
        assert client.stats()["pending_requests"] == 0


async def test_cancel_one_request_leaves_others(server: sim.Simulator, net: Net) -> None:
    async with net.connect(server, timeout=5) as client:
        await client.subscribe(["HK.00700"], [SubType.TICKER])
        server.reply_delay = 0.2
        got: list[int] = []

        async def survivor() -> None:
            got.append(len(await client.get_rt_ticker("HK.00700", 7)))

        async with anyio.create_task_group() as tg:
            tg.start_soon(survivor)
            with anyio.move_on_after(0.05) as scope:
                await client.get_rt_ticker("HK.00700", 3)
            assert scope.cancelled_caught
        assert got == [7]
        server.reply_delay = 0.0
        assert len(await client.get_rt_ticker("HK.00700", 4)) == 4
        assert client.stats()["pending_requests"] == 0


async def test_dropped_server_fails_pending_within_a_second(
    server: sim.Simulator, net: Net
) -> None:
    async with net.connect(server, timeout=30) as client:
        await client.subscribe(["HK.00700"], [SubType.TICKER])
        server.stall = True
        errors: list[BaseException] = []
        started = time.monotonic()

        async def waiter() -> None:
            try:
                await client.get_rt_ticker("HK.00700", 10)
            except aiofutu.ConnectionLost as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(waiter)
            await anyio.sleep(0.1)
            await server.drop_connections()
        assert len(errors) == 5
        assert time.monotonic() - started < 1.5
        assert not client.connected
        with pytest.raises(aiofutu.ConnectionLost):
            await client.get_rt_ticker("HK.00700", 10)


async def test_connect_refused_is_connect_error(net: Net) -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    with pytest.raises(aiofutu.ConnectError, match=str(port)):
        async with net.connect(port, connect_timeout=2):
            pass


async def test_server_that_never_answers_init_connect(net: Net) -> None:
    async with await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0) as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)

        async def hold(stream: anyio.abc.SocketStream) -> None:
            async with stream:
                await anyio.sleep(5)

        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, hold)
            started = time.monotonic()
            what = "the WebSocket upgrade" if net.websocket else "InitConnect"
            with pytest.raises(aiofutu.ConnectError, match=what):
                async with net.connect(port, connect_timeout=0.3):
                    pass
            assert time.monotonic() - started < 2
            tg.cancel_scope.cancel()


async def test_user_exception_is_not_wrapped(server: sim.Simulator, net: Net) -> None:
    with pytest.raises(KeyError):
        async with net.connect(server):
            raise KeyError("mine")


async def test_closed_client_raises_client_closed(server: sim.Simulator, net: Net) -> None:
    async with net.connect(server) as client:
        await client.subscribe(["HK.00700"], [SubType.TICKER])
        await client.aclose()
        assert client.closed
        with pytest.raises(aiofutu.ClientClosed):
            await client.get_rt_ticker("HK.00700", 5)
        with pytest.raises(aiofutu.ClientClosed):
            client.ticker_stream("HK.00700")
    with pytest.raises(aiofutu.ClientClosed):
        await client.subscribe(["HK.00700"], [SubType.TICKER])


async def test_raw_request_and_global_state(client: aiofutu.Client) -> None:
    from aiofutu._pb import keep_alive_pb2

    req = keep_alive_pb2.Request()
    req.c2s.time = 1
    resp = await client.request(aiofutu.ProtoId.KEEP_ALIVE, req)
    assert resp.s2c.time > 0
    state = await client.get_global_state()
    assert state["qotLogined"] is True


async def test_stats_for_monitoring(client: aiofutu.Client, server: sim.Simulator) -> None:
    await client.subscribe(["HK.00700"], [SubType.TICKER])
    for _ in range(5):
        await client.get_rt_ticker("HK.00700", 10)
    async with client.ticker_stream("HK.00700", is_first_push=False) as stream:
        await server.burst("HK.00700", n=20)
        with anyio.fail_after(5):
            for _ in range(20):
                await stream.__anext__()
        stats = client.stats()
    assert stats["state"] == "ready"
    assert stats["reconnects"] == 0
    assert stats["bytes_in"] > 0
    assert stats["bytes_out"] > 0
    latency = stats["request_latency_ms"]
    assert latency["count"] >= 6
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    assert "HK.00700" in stats["last_push"]
    (mine,) = stats["streams"]
    assert mine["codes"] == ["HK.00700"]
    assert mine["received"] == 20
    assert mine["kind"] == "ticks"


async def test_the_socket_is_read_by_the_backends_own_pipe(
    client: aiofutu.Client, anyio_backend: str
) -> None:
    """asyncio: a protocol whose data_received resolves plain futures; trio: a reader task."""
    from aiofutu._transport import _ProtocolPipe, _StreamPipe

    pipe = client._conn._pipe
    expected = _ProtocolPipe if anyio_backend == "asyncio" else _StreamPipe
    assert isinstance(pipe, expected)
    assert (pipe.loop is not None) == (anyio_backend == "asyncio")
    await client.subscribe(["HK.00700"], [SubType.TICKER])
    assert len(await client.get_rt_ticker("HK.00700", 3)) == 3
