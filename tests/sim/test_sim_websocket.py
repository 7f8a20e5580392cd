"""The simulator's WebSocket gateway over real sockets, driven by a raw wsproto client on anyio
(so on asyncio and trio): Init and the key rule, the shared market and subscription state, and
malformed input that must never take the simulator or another connection down."""

from __future__ import annotations

import struct
import sys
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    Request,
    TextMessage,
)

import aiofutu
from aiofutu import _wscodec as wscodec
from aiofutu import sim
from aiofutu._codec import encode_frame
from aiofutu._pb import (
    get_global_state_pb2,
    init_websocket_pb2,
    keep_alive_pb2,
    qot_common_pb2,
    qot_get_ticker_pb2,
    qot_sub_pb2,
    qot_update_ticker_pb2,
)
from aiofutu.errors import MissingDependency, OpenDError
from aiofutu.sim import ErrCode
from aiofutu.testing import opend_config

if TYPE_CHECKING:
    from anyio.abc import SocketStream

HK = "HK.00700"
TICKER = 4
MD5_TESTKEY = "221b368d7f5f597867f525971f28ff75"
_RESPONSES: dict[int, Any] = {
    1: init_websocket_pb2,
    1002: get_global_state_pb2,
    1004: keep_alive_pb2,
    3001: qot_sub_pb2,
    3010: qot_get_ticker_pb2,
}


def _security(code: str) -> qot_common_pb2.Security:
    market, short = code.split(".", 1)
    return qot_common_pb2.Security(market={"HK": 1, "US": 11}[market], code=short)


class Closed(Exception):
    """The server closed the WebSocket (``code``) or the TCP connection (1006)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class WsClient:
    """Just enough of the npm SDK's side: wsproto for WebSocket, _wscodec packets inside."""

    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.events: deque[Event] = deque()
        self.section = 1  # incremented before use, as the SDK does: Init is section 2
        self.pushes: list[wscodec.WsReply] = []
        self._parts: list[bytes] = []

    @classmethod
    async def connect(cls, server: sim.Simulator) -> WsClient:
        assert server.websocket_port
        client = cls(await anyio.connect_tcp("127.0.0.1", server.websocket_port))
        await client.stream.send(client.ws.send(Request(host="127.0.0.1", target="/")))
        event = await client.event()
        assert isinstance(event, AcceptConnection)
        assert event.extensions == []  # permessage-deflate declined
        return client

    async def event(self, timeout: float = 5.0) -> Event:
        with anyio.fail_after(timeout):
            while not self.events:
                try:
                    data: bytes | None = await self.stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    data = None
                self.ws.receive_data(data)
                self.events.extend(self.ws.events())
            return self.events.popleft()

    async def message(self, timeout: float = 5.0) -> wscodec.WsReply:
        """The next server packet; :class:`Closed` if a Close or EOF comes instead."""
        while True:
            event = await self.event(timeout)
            if isinstance(event, CloseConnection):
                raise Closed(event.code)
            assert isinstance(event, BytesMessage), event
            self._parts.append(bytes(event.data))
            if event.message_finished:
                data = b"".join(self._parts)
                self._parts = []
                return wscodec.decode_reply(data)

    async def send_packet(self, data: bytes) -> None:
        await self.stream.send(self.ws.send(BytesMessage(data=data)))

    async def send_raw(self, cmd: int, body: bytes) -> int:
        self.section += 1
        await self.send_packet(wscodec.encode_request(cmd, self.section, body))
        return self.section

    async def reply(self, cmd: int, section: int, timeout: float = 5.0) -> wscodec.WsReply:
        """The reply to ``section`` (pushes meanwhile are kept in :attr:`pushes`)."""
        while True:
            packet = await self.message(timeout)
            if packet.section == 0 and packet.cmd == 3011:
                self.pushes.append(packet)
                continue
            assert (packet.cmd, packet.section) == (cmd, section)
            return packet

    async def request(self, cmd: int, c2s: Any) -> Any:
        module = _RESPONSES[cmd]
        section = await self.send_raw(cmd, module.Request(c2s=c2s).SerializeToString())
        packet = await self.reply(cmd, section)
        response = module.Response.FromString(packet.body)
        assert packet.error == response.retType
        return response

    async def init(self, key: str | None = None) -> init_websocket_pb2.Response:
        self.section += 1
        await self.send_packet(wscodec.encode_init_request(key, self.section))
        packet = await self.reply(wscodec.CMD_INIT, self.section)
        return init_websocket_pb2.Response.FromString(packet.body)

    async def subscribe(self, code: str, *, first: bool | None = None) -> qot_sub_pb2.Response:
        c2s = qot_sub_pb2.C2S(
            securityList=[_security(code)],
            subTypeList=[TICKER],
            isSubOrUnSub=True,
            isRegOrUnRegPush=True,
        )
        if first is not None:
            c2s.isFirstPush = first
        return await self.request(3001, c2s)  # type: ignore[no-any-return]

    async def push(self, timeout: float = 5.0) -> qot_update_ticker_pb2.S2C:
        packet = self.pushes.pop(0) if self.pushes else await self.message(timeout)
        assert (packet.cmd, packet.section, packet.error, packet.errmsg) == (3011, 0, 0, "")
        response = qot_update_ticker_pb2.Response.FromString(packet.body)
        assert response.retType == 0
        return response.s2c

    async def global_state(self) -> get_global_state_pb2.Response:
        return await self.request(1002, get_global_state_pb2.C2S(userID=0))  # type: ignore[no-any-return]

    async def expect_close(self, timeout: float = 5.0) -> int:
        with pytest.raises(Closed) as info:
            while True:
                await self.message(timeout)
        return info.value.code

    async def aclose(self) -> None:
        await anyio.aclose_forcefully(self.stream)


async def _ready(server: sim.Simulator, key: str | None = None) -> WsClient:
    client = await WsClient.connect(server)
    response = await client.init(key)
    assert response.retType == 0
    return client


async def _watcher(server: sim.Simulator) -> WsClient:
    """A connection with TICKER push on HK.00700, to show it is not disturbed."""
    watcher = await _ready(server)
    assert (await watcher.subscribe(HK, first=False)).retType == 0
    return watcher


async def _still_served(server: sim.Simulator, watcher: WsClient, n: int = 3) -> None:
    await server.burst(HK, n)
    for _ in range(n):
        assert len((await watcher.push()).tickerList) == 1
    assert (await watcher.global_state()).retType == 0


# ---- the happy path -------------------------------------------------------------------------


async def test_init_sub_get_ticker_and_pushes() -> None:
    async with sim.serve(tick_rate=0, websocket_port=0) as server:
        assert server.websocket_port and server.websocket_port != server.port
        client = await WsClient.connect(server)
        client.section = 2**64 - 4  # sections are 64-bit: the reply echoes them exactly
        init = await client.init()
        assert init.retType == 0 and init.HasField("s2c")
        (session,) = server.sessions()
        assert init.s2c.connID == session.conn_id
        assert abs(init.s2c.serverTime - time.time()) < 60
        assert server.handshakes == {"websocket": 1}

        assert (await client.subscribe(HK)).retType == 0  # no isFirstPush: the default (True)
        first = await client.push()
        ring = server.market.security(HK).recent()
        assert first.tickerList[0] == ring[-1]
        assert (first.security.market, first.security.code) == (1, "00700")

        c2s = qot_get_ticker_pb2.C2S(security=_security(HK), maxRetNum=5)
        ticks = await client.request(3010, c2s)
        assert ticks.retType == 0 and list(ticks.s2c.tickerList) == list(ring)[-5:]
        assert client.section == 2**64 - 1

        await server.burst(HK, 4, ticks_per_push=2)
        pushed = [t for _ in range(2) for t in (await client.push()).tickerList]
        assert pushed == server.market.security(HK).recent()[-4:]
        assert server.requests == {3001: 1, 3010: 1}
        await client.aclose()


async def test_python_and_websocket_clients_see_the_same_ticks() -> None:
    async with (
        sim.serve(tick_rate=0, websocket_port=0) as server,
        aiofutu.connect(server.host, server.port, timeout=10) as py,
        py.ticker_stream(HK, is_first_push=False) as stream,
    ):
        js = await _ready(server)
        assert (await js.subscribe(HK, first=False)).retType == 0
        await server.burst(HK, 50)
        got_py = []
        with anyio.fail_after(10):
            async for tick in stream:
                got_py.append((tick.sequence, tick.price, tick.volume))
                if len(got_py) == 50:
                    break
        got_js = []
        for _ in range(50):
            (t,) = (await js.push()).tickerList
            got_js.append((t.sequence, t.price, t.volume))
        assert got_js == got_py
        assert all(s > 2**53 for s, _, _ in got_js)
        await js.aclose()


async def test_subscription_state_and_quota_are_shared_with_tcp() -> None:
    async with (
        sim.serve(tick_rate=0, websocket_port=0, sub_quota=1) as server,
        aiofutu.connect(server.host, server.port, timeout=10) as py,
    ):
        js = await _ready(server)
        assert (await js.subscribe(HK)).retType == 0
        assert server.used_quota() == {(HK, TICKER)}
        with pytest.raises(OpenDError, match="quota"):
            await py.subscribe(["US.AAPL"], ["TICKER"])
        info = await py.query_subscription(all_connections=True)
        # The WebSocket connection's subscription is listed with the TCP ones, on one quota.
        assert (info.total_used, info.remain, info.own_used) == (1, 0, 0)
        assert list(info.sub_list.values()) == [[HK]]
        await js.aclose()


async def test_burst_over_websocket_is_complete_and_in_order() -> None:
    async with sim.serve(tick_rate=0, websocket_port=0) as server:
        client = await _ready(server)
        assert (await client.subscribe(HK, first=False)).retType == 0
        result = await server.burst(HK, 3000)
        assert (result.connections, result.messages) == (1, 3000)
        seqs = [(await client.push()).tickerList[0].sequence for _ in range(3000)]
        assert seqs[-1000:] == [t.sequence for t in server.market.security(HK).recent()]
        assert seqs == sorted(seqs) and len(set(seqs)) == 3000
        await client.aclose()


async def test_reply_delay_applies() -> None:
    async with sim.serve(tick_rate=0, websocket_port=0, reply_delay=0.3) as server:
        client = await WsClient.connect(server)
        started = anyio.current_time()
        assert (await client.init()).retType == 0
        assert anyio.current_time() - started >= 0.25
        await client.aclose()


async def test_drop_after_frames_counts_websocket_messages() -> None:
    async with sim.serve(tick_rate=0, websocket_port=0, drop_after_frames=4) as server:
        client = await _ready(server)  # 1
        assert (await client.subscribe(HK)).retType == 0  # 2, and the first push (3)
        await server.burst(HK, 10)
        await client.push()
        await client.push()  # 4: the last one
        assert await client.expect_close() == 1006  # dropped without a Close frame, as a crash
        await client.aclose()


async def test_idle_connection_is_kept() -> None:
    async with sim.serve(tick_rate=0, websocket_port=0, keepalive_interval=1) as server:
        client = await _ready(server)
        await anyio.sleep(1.5)  # no KeepAlive: the SDK never sends one
        assert (await client.global_state()).retType == 0
        await client.aclose()


# ---- Init and the websocket key -------------------------------------------------------------


async def test_key_rule() -> None:
    async with sim.serve(tick_rate=0, websocket_port=0, websocket_key="testkey") as server:
        client = await WsClient.connect(server)
        for wrong in ("wrong", None):
            client.section += 1
            await client.send_packet(wscodec.encode_init_request(wrong, client.section))
            with pytest.raises(TimeoutError):  # as from OpenD: no answer, the client times out
                await client.message(timeout=0.3)
        assert server.handshakes == {"websocket-refused": 2}
        # Not logged in: requests are refused, with a body that settles the SDK's promise.
        refused = await client.global_state()
        assert refused.retType == -1 and refused.errCode == ErrCode.NOT_INITIALIZED
        assert "Init (cmd 1) must be the first" in refused.retMsg
        # The MD5 of the key (any case) is accepted on the same connection.
        section = await client.send_raw(
            1,
            init_websocket_pb2.Request(
                c2s=init_websocket_pb2.C2S(websocketKey=MD5_TESTKEY.upper())
            ).SerializeToString(),
        )
        packet = await client.reply(1, section)
        assert packet.error == 0
        assert init_websocket_pb2.Response.FromString(packet.body).retType == 0
        assert server.handshakes == {"websocket-refused": 2, "websocket": 1}
        assert (await client.global_state()).retType == 0
        await client.aclose()


async def test_without_a_key_any_init_is_accepted() -> None:
    async with sim.serve(tick_rate=0, websocket_port=0) as server:
        for key in (None, "anything"):
            client = await WsClient.connect(server)
            assert (await client.init(key)).retType == 0
            await client.aclose()


async def test_garbage_init_body_gets_an_error_reply() -> None:
    async with sim.serve(tick_rate=0, websocket_port=0) as server:
        client = await WsClient.connect(server)
        section = await client.send_raw(1, b"\xff\xff\xff")
        packet = await client.reply(1, section)
        assert packet.error == -1 and packet.errmsg.isascii() and packet.errmsg
        response = init_websocket_pb2.Response.FromString(packet.body)
        assert response.retType == -1 and not response.HasField("s2c")
        assert (await client.init()).retType == 0  # the connection goes on
        await client.aclose()


async def test_request_before_init_is_refused() -> None:
    async with sim.serve(tick_rate=0, websocket_port=0) as server:
        client = await WsClient.connect(server)
        c2s = qot_get_ticker_pb2.C2S(security=_security(HK), maxRetNum=5)
        refused = await client.request(3010, c2s)
        assert refused.retType == -1 and refused.errCode == ErrCode.NOT_INITIALIZED
        assert server.requests == {}
        await client.aclose()


# ---- malformed messages ---------------------------------------------------------------------


def _header(cmd: int, section: int, sign: bytes = wscodec.WS_MAGIC) -> bytes:
    return struct.pack(">8sIQ", sign, cmd, section)


_SUB = qot_sub_pb2.Request(
    c2s=qot_sub_pb2.C2S(securityList=[_security(HK)], subTypeList=[TICKER], isSubOrUnSub=True)
).SerializeToString()

MALFORMED: dict[str, tuple[bytes, int | None, int | None, str]] = {
    "empty": (b"", 0, 0, "shorter than the 20-byte header"),
    "short-header": (wscodec.WS_MAGIC + b"\x00\x00\x0b\xb9", 0, 0, "shorter than"),
    "wrong-sign": (_header(3001, 77, b"ft-v2.0\x00") + _SUB, 3001, 77, "bad sign"),
    "tcp-frame": (encode_frame(3001, 77, _SUB), None, None, "bad sign"),
    "unknown-cmd": (_header(2, 77), 2, 77, "unknown cmd 2"),
    "cmd-zero": (_header(0, 77), 0, 77, "unknown cmd 0"),
    "unknown-proto": (_header(4321, 77), 4321, 77, "unknown protocol id 4321"),
    "garbage-body": (_header(3001, 77) + b"\xff\xff\xff\xff", 3001, 77, "cannot parse"),
    "no-body": (_header(3010, 77), 3010, 77, "protocol 3010"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_malformed_packet_gets_an_error_reply(case: str) -> None:
    data, cmd, section, text = MALFORMED[case]
    async with sim.serve(tick_rate=0, websocket_port=0) as server:
        watcher = await _watcher(server)
        client = await _ready(server)
        await client.send_packet(data)
        packet = await client.message()
        if cmd is None:  # a TCP header, read as a WebSocket one
            cmd, section = struct.unpack_from(">IQ", data, 8)
        assert (packet.cmd, packet.section) == (cmd, section)
        assert packet.error == -1 and packet.errmsg and packet.errmsg.isascii()
        response = keep_alive_pb2.Response.FromString(packet.body)
        assert response.retType == -1 and text in response.retMsg, response.retMsg
        assert (await client.global_state()).retType == 0  # the connection goes on
        await _still_served(server, watcher)
        await client.aclose()
        await watcher.aclose()


async def test_text_message_closes_with_1003() -> None:
    async with sim.serve(tick_rate=0, websocket_port=0) as server:
        watcher = await _watcher(server)
        client = await _ready(server)
        await client.stream.send(client.ws.send(TextMessage(data='{"c2s": {}}')))
        assert await client.expect_close() == 1003
        await client.aclose()
        await _still_served(server, watcher)
        await watcher.aclose()


def _masked_frame_header(length: int) -> bytes:
    """A client's binary frame header announcing ``length`` bytes, with a zero mask."""
    return b"\x82\xff" + struct.pack(">Q", length) + bytes(4)


@pytest.mark.parametrize("how", ["one-frame", "fragmented", "announced"])
async def test_oversized_message_closes_with_1009(how: str) -> None:
    async with sim.serve(tick_rate=0, websocket_port=0, websocket_max_message=4096) as server:
        watcher = await _watcher(server)
        client = await _ready(server)
        payload = _header(3001, 9) + bytes(5000)
        if how == "announced":  # a frame of 1 TiB is announced; the server must not wait for it
            await client.stream.send(_masked_frame_header(1 << 40) + payload)
        elif how == "fragmented":
            for start in range(0, len(payload), 1000):
                last = start + 1000 >= len(payload)
                event = BytesMessage(data=payload[start : start + 1000], message_finished=last)
                await client.stream.send(client.ws.send(event))
        else:
            await client.send_packet(payload)
        assert await client.expect_close() == 1009
        await client.aclose()
        await _still_served(server, watcher)
        await watcher.aclose()


async def test_websocket_protocol_violation_closes_with_1002() -> None:
    async with sim.serve(tick_rate=0, websocket_port=0) as server:
        watcher = await _watcher(server)
        client = await _ready(server)
        await client.stream.send(b"\x82\x05hello")  # an unmasked client frame
        assert await client.expect_close() == 1002
        await client.aclose()
        await _still_served(server, watcher)
        await watcher.aclose()


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x00\xff garbage \r\n\r\n",
        encode_frame(1001, 1, b""),
    ],
    ids=["plain-http", "garbage", "tcp-init-connect"],
)
async def test_not_a_websocket_upgrade(data: bytes) -> None:
    async with sim.serve(tick_rate=0, websocket_port=0) as server:
        watcher = await _watcher(server)
        stream = await anyio.connect_tcp("127.0.0.1", server.websocket_port or 0)
        await stream.send(data)
        received = b""
        with anyio.fail_after(5):
            while True:
                try:
                    received += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    break
        assert received.startswith(b"HTTP/1.1 400"), received
        await stream.aclose()
        await _still_served(server, watcher)
        await watcher.aclose()


async def test_ping_and_close_are_answered() -> None:
    async with sim.serve(tick_rate=0, websocket_port=0) as server:
        client = await _ready(server)
        (session,) = server.sessions()
        await client.stream.send(client.ws.send(Ping(payload=b"are you there")))
        assert await client.event() == Pong(payload=b"are you there")
        # Node's client closes with no status code; the server echoes a Close, then hangs up.
        await client.stream.send(client.ws.send(CloseConnection(code=1005)))
        event = await client.event()
        assert isinstance(event, CloseConnection) and event.code == 1000
        with anyio.fail_after(5):
            await session.closed.wait()
        assert server.connection_count == 0
        await client.aclose()


# ---- configuration ---------------------------------------------------------------------------


async def test_without_wsproto_a_clear_missing_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wsproto", None)
    with pytest.raises(MissingDependency, match=r"aiofutu\[ws\]"):
        async with sim.serve(tick_rate=0, websocket_port=0):
            pass
    async with (  # the TCP simulator does not need it
        sim.serve(tick_rate=0) as server,
        aiofutu.connect(server.host, server.port, timeout=10) as client,
    ):
        assert server.websocket_port is None
        await client.get_global_state()


def test_config_checks() -> None:
    with pytest.raises(ValueError, match="websocket_key needs websocket_port"):
        sim.SimConfig(websocket_key="k")
    with pytest.raises(ValueError, match="websocket_port"):
        sim.SimConfig(websocket_port=70000)
    with pytest.raises(ValueError, match="websocket_max_message"):
        sim.SimConfig(websocket_port=0, websocket_max_message=10)
    config = sim.SimConfig(websocket_port=33333, websocket_key="secret")
    assert config.changed()["websocket_key"] == "<set>"  # never the key in a log line


def test_cli_flags() -> None:
    from aiofutu.cli import build_parser
    from aiofutu.cli._config import _sim_config

    args = build_parser().parse_args(["sim", "--websocket-port", "0", "--websocket-key", "k"])
    config = _sim_config(args)
    assert (config.websocket_port, config.websocket_key) == (0, "k")
    assert _sim_config(build_parser().parse_args(["sim"])).websocket_port is None


@opend_config(websocket_port=0, websocket_key="testkey")
async def test_testing_plugin_starts_the_gateway(opend: sim.Simulator) -> None:
    client = await _ready(opend, "testkey")
    assert (await client.subscribe(HK)).retType == 0
    await client.push()
    await client.aclose()


# ---- requests without a subscription: history K-lines, their quota, market state -------------


async def test_history_quota_and_market_state_over_websocket() -> None:
    from aiofutu._pb import (
        qot_get_market_state_pb2,
        qot_request_history_kl_pb2,
        qot_request_history_kl_quota_pb2,
    )

    _RESPONSES.update(
        {
            3103: qot_request_history_kl_pb2,
            3104: qot_request_history_kl_quota_pb2,
            3223: qot_get_market_state_pb2,
        }
    )
    async with (
        sim.serve(tick_rate=0, websocket_port=0, rate_window=60.0) as server,
        aiofutu.connect(server.host, server.port, timeout=10) as py,
    ):
        js = await _ready(server)
        c2s = qot_request_history_kl_pb2.C2S(
            rehabType=1,
            klType=1,
            security=_security(HK),
            beginTime="2024-01-02 00:00:00",
            endTime="2024-01-03 23:59:59",
            maxAckKLNum=400,
            needKLFieldsFlag=1023,
        )
        first = await js.request(3103, c2s)
        assert first.retType == 0 and len(first.s2c.klList) == 400
        c2s.nextReqKey = first.s2c.nextReqKey
        second = await js.request(3103, c2s)
        assert len(second.s2c.klList) == 2 * 330 - 400 and not second.s2c.HasField("nextReqKey")
        # the same bars as the Python client gets over TCP
        page = await py.request_history_kline(
            HK, "2024-01-02", "2024-01-03", "K_1M", max_count=None
        )
        times = [k.time for k in (*first.s2c.klList, *second.s2c.klList)]
        assert times == [b.time for b in page.bars]
        quota = await js.request(3104, qot_request_history_kl_quota_pb2.C2S(bGetDetail=True))
        assert (quota.s2c.usedQuota, quota.s2c.remainQuota) == (1, 99)
        states = qot_get_market_state_pb2.C2S(securityList=[_security(HK), _security("US.AAPL")])
        answer = await js.request(3223, states)
        assert [i.name for i in answer.s2c.marketInfoList] == ["Tencent", "Apple Inc."]
        # the rate limit is the simulator's, over both gateways: 9 more, then a refusal
        for _ in range(8):
            assert (await js.request(3223, states)).retType == 0
        await py.get_market_state(HK)  # the 10th
        refused = await js.request(3223, states)
        assert refused.retType == -1 and "request too frequent" in refused.retMsg
        assert refused.errCode == ErrCode.RATE_LIMITED
        await js.aclose()
