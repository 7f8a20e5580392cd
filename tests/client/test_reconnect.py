"""Reconnect, resubscribe, gapless backfill, state changes and liveness, over real sockets."""

from __future__ import annotations

import time

import anyio
import anyio.abc
import pytest

import aiofutu
from aiofutu import ClientState, ReconnectPolicy, SubType, Ticker

from .conftest import Net

pytestmark = pytest.mark.anyio
#: every test here runs over TCP and over the WebSocket gateway (tests/client/conftest.py)
BOTH_TRANSPORTS = True

HK = "HK.00700"
US = "US.AAPL"
LOW = 0xFFFFFFFF


def _policy(delay: float, **kw: object) -> ReconnectPolicy:
    return ReconnectPolicy(initial_delay=delay, max_delay=delay, jitter=0.0, **kw)  # type: ignore[arg-type]


async def _reconnected(client: aiofutu.Client, within: float) -> None:
    """Wait until the client noticed the drop, then until it is ready again."""
    with anyio.fail_after(within):
        while client.state is ClientState.READY and client.reconnects == 0:  # noqa: ASYNC110
            await anyio.sleep(0.01)
        await client.wait_ready(timeout=within)


@pytest.mark.parametrize("outage", [0.2, 2.0])
async def test_stream_is_gapless_across_outage(outage: float, net: Net) -> None:
    async with net.serve(port=0, tick_rate=200, codes=(HK,), unsub_min_age=0) as server:
        async with net.connect(server, reconnect=_policy(outage), timeout=5) as client:
            got: list[Ticker] = []
            async with client.ticker_stream(HK, buffer=100_000) as stream:
                await anyio.sleep(0.5)
                await server.drop_connections()
                await _reconnected(client, outage + 5)
                await anyio.sleep(0.5)
                while stream.pending:
                    got.extend(stream.drain())
                assert client.reconnects == 1
    counters = [t.sequence & LOW for t in got]
    assert len(counters) > (1.0 + outage) * 100
    assert counters == list(range(counters[0], counters[0] + len(counters)))  # no loss, no dup
    assert stream.gaps == []


async def test_outage_beyond_window_reports_gap(net: Net) -> None:
    async with net.serve(port=0, tick_rate=0, codes=(HK,)) as server:
        async with net.connect(server, reconnect=_policy(0.5), timeout=5) as client:
            async with client.ticker_stream(HK, is_first_push=False) as stream:
                await server.burst(HK, n=10)
                await anyio.sleep(0.1)
                before = stream.drain()
                assert len(before) == 10
                await server.drop_connections()
                server.market.generate(HK, 1500)  # ticks made while the client is away
                await _reconnected(client, 10)
                await server.burst(HK, n=10)
                await anyio.sleep(0.2)
                after = stream.drain()
    assert len(after) == 1000 + 10  # OpenD's window of the missed ticks, then live ones
    assert len(stream.gaps) == 1
    gap = stream.gaps[0]
    assert gap.after == before[-1].sequence
    assert gap.before == after[0].sequence
    assert gap.missing == 500
    counters = [t.sequence & LOW for t in after]
    assert counters == list(range(counters[0], counters[0] + 1010))


async def test_state_changes_and_requests_during_reconnect(net: Net) -> None:
    async with net.serve(port=0, tick_rate=0) as server:
        async with net.connect(server, reconnect=_policy(0.5), timeout=5) as client:
            await client.subscribe([HK], [SubType.TICKER])
            watch = client.state_changes()
            first = await watch.__anext__()
            assert first.state is ClientState.READY
            server.stall = True
            lost: list[BaseException] = []

            async def in_flight() -> None:
                try:
                    await client.get_rt_ticker(HK, 5)
                except aiofutu.ConnectionLost as exc:
                    lost.append(exc)

            async with anyio.create_task_group() as tg:
                tg.start_soon(in_flight)
                await anyio.sleep(0.1)
                server.stall = False
                await server.drop_connections()
            assert len(lost) == 1  # in-flight requests fail, they are not retried
            assert client.state is ClientState.RECONNECTING
            started = time.monotonic()
            ticks = await client.get_rt_ticker(HK, 5)  # waits for the link to return
            assert len(ticks) == 5
            assert time.monotonic() - started >= 0.3
            states = [(await watch.__anext__()).state for _ in range(2)]
            assert states == [ClientState.RECONNECTING, ClientState.READY]
            # the subscription was restored on the new connection
            info = await client.query_subscription()
            assert info.sub_list[SubType.TICKER] == [HK]
        last = await watch.__anext__()
        assert last.state is ClientState.CLOSED
        with pytest.raises(StopAsyncIteration):
            await watch.__anext__()


async def test_request_waits_only_up_to_its_timeout(net: Net) -> None:
    async with net.serve(port=0, tick_rate=0) as server:
        async with net.connect(server, reconnect=_policy(5.0), timeout=5) as client:
            await client.subscribe([HK], [SubType.TICKER])
            await server.drop_connections()
            await anyio.sleep(0.05)
            started = time.monotonic()
            with pytest.raises(aiofutu.ConnectionLost, match="did not come back"):
                await client.get_rt_ticker(HK, 5, timeout=0.3)
            assert time.monotonic() - started < 1.0


async def test_gives_up_after_max_attempts(net: Net) -> None:
    async with net.serve(port=0, tick_rate=0) as server:
        async with net.connect(
            server, reconnect=_policy(0.05, max_attempts=2), connect_timeout=1
        ) as client:
            stream = client.ticker_stream(HK, is_first_push=False)
            await stream.start()
            server.faults.refuse_connections = True  # OpenD goes away for good
            await server.drop_connections()
            with anyio.fail_after(5), pytest.raises(aiofutu.ConnectionLost, match="gave up"):
                async for _ in stream:
                    pass
            assert client.state is ClientState.CLOSED
            with pytest.raises(aiofutu.ConnectionLost):
                await client.get_global_state()


async def test_refused_restore_is_reported_to_the_stream(net: Net) -> None:
    async with net.serve(port=0, tick_rate=0, sub_quota=2, codes=()) as server:
        async with net.connect(server, reconnect=_policy(0.5), timeout=5) as client:
            async with client.ticker_stream(HK, US, is_first_push=False) as stream:
                await server.drop_connections()
                # someone else takes the quota while we are away
                async with net.connect(server) as other:
                    await other.subscribe(["HK.09988", "US.TSLA"], [SubType.TICKER])
                    await _reconnected(client, 5)
                    with pytest.raises(aiofutu.OpenDError, match="quota"):
                        async for _ in stream:
                            pass
            assert client.subscriptions() == {}


async def test_silent_link_is_declared_dead(net: Net) -> None:
    async with net.serve(port=0, tick_rate=0, keepalive_interval=1) as server:
        # over WebSocket, a Ping (answered by a live gateway, not by a stalled one) stands in
        # for KeepAlive, and its interval is the client's to choose
        ping = {"websocket_ping_interval": 1} if net.websocket else {}
        async with net.connect(
            server, reconnect=_policy(0.2), timeout=5, connect_timeout=1, **ping
        ) as client:
            watch = client.state_changes()
            assert (await watch.__anext__()).state is ClientState.READY
            server.stall = True
            with anyio.fail_after(5):
                change = await watch.__anext__()
            assert change.state is ClientState.RECONNECTING
            assert "KeepAlive" in (change.cause or "")
            server.stall = False
            await _reconnected(client, 10)
            assert client.reconnects >= 1


async def test_first_connect_waits_for_opend_when_asked(net: Net) -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()  # nothing listens on `port` yet

    async def late_opend(started: anyio.Event, done: anyio.Event) -> None:
        await anyio.sleep(0.5)
        # the free port is the one the client dials: the gateway's over WebSocket
        ports = {"port": 0, "websocket_port": port} if net.websocket else {"port": port}
        async with net.serve(**ports, tick_rate=0):
            started.set()
            await done.wait()

    started, done = anyio.Event(), anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(late_opend, started, done)
        policy = _policy(0.1, first_connect=True)
        async with net.connect(port, reconnect=policy, connect_timeout=1) as c:
            assert started.is_set()
            assert c.state is ClientState.READY
            await c.subscribe([HK], [SubType.TICKER])
        done.set()


async def test_first_connect_gives_up_after_max_attempts(net: Net) -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    policy = _policy(0.05, first_connect=True, max_attempts=3)
    with pytest.raises(aiofutu.ConnectError, match="gave up after 3 attempt"):
        async with net.connect(port, reconnect=policy, connect_timeout=1):
            pass
    # without first_connect, the first failure is raised at once
    with pytest.raises(aiofutu.ConnectError, match="cannot connect"):
        async with net.connect(port, reconnect=_policy(0.05)):
            pass
