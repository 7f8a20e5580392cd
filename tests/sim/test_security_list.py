"""The simulator's security list: real codes by default, extendable, and OpenD's refusal of the
rest, over real sockets (raw frames, and aiofutu's client)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import aiofutu
from aiofutu import sim
from aiofutu._codec import FrameDecoder, encode_frame
from aiofutu._pb import (
    init_connect_pb2,
    qot_common_pb2,
    qot_get_sub_info_pb2,
    qot_get_ticker_pb2,
    qot_reg_qot_push_pb2,
    qot_sub_pb2,
)
from aiofutu.codes import parse_code
from aiofutu.sim import DEFAULT_UNIVERSE, ErrCode, Listing, SimConfig

TICKER = aiofutu.SubType.TICKER.wire
UNKNOWN = "HK.99999999"
_MODULES: dict[int, Any] = {
    1001: init_connect_pb2,
    3001: qot_sub_pb2,
    3002: qot_reg_qot_push_pb2,
    3003: qot_get_sub_info_pb2,
    3010: qot_get_ticker_pb2,
}


def _security(code: str) -> qot_common_pb2.Security:
    market, short = parse_code(code)
    return qot_common_pb2.Security(market=market.wire, code=short)


class _Raw:
    """Requests and replies as frames, nothing of aiofutu's client in between."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self.decoder = FrameDecoder()
        self.serial = 0

    async def request(self, proto_id: int, c2s: Any) -> Any:
        module = _MODULES[proto_id]
        self.serial += 1
        body = module.Request(c2s=c2s).SerializeToString()
        await self.stream.send(encode_frame(proto_id, self.serial, body))
        with anyio.fail_after(5):
            while True:
                frame = self.decoder.next_frame()
                if frame is None:
                    self.decoder.feed(await self.stream.receive(1 << 16))
                elif frame.proto_id == proto_id:
                    assert frame.serial == self.serial
                    return module.Response.FromString(frame.body)

    async def subscribe(self, *codes: str, on: bool = True) -> Any:
        c2s = qot_sub_pb2.C2S(
            securityList=[_security(c) for c in codes],
            subTypeList=[TICKER],
            isSubOrUnSub=on,
            isRegOrUnRegPush=on,
        )
        return await self.request(3001, c2s)

    async def get_ticker(self, code: str, n: int = 10) -> Any:
        c2s = qot_get_ticker_pb2.C2S(security=_security(code), maxRetNum=n)
        return await self.request(3010, c2s)


async def _raw(server: sim.Simulator) -> _Raw:
    raw = _Raw(await anyio.connect_tcp(server.host, server.port))
    reply = await raw.request(1001, init_connect_pb2.C2S(clientVer=300, clientID="t"))
    assert reply.retType == 0
    return raw


def _refused(reply: Any, *codes: str) -> None:
    assert reply.retType == -1
    assert reply.errCode == ErrCode.UNKNOWN_SECURITY
    assert "unknown stock" in reply.retMsg
    for code in codes:
        assert code in reply.retMsg


# ---- the default list ------------------------------------------------------------------------


def test_default_universe_has_real_codes_for_every_main_market() -> None:
    for market, at_least in (("HK", 30), ("US", 30), ("SH", 20), ("SZ", 20)):
        codes = [c for c in DEFAULT_UNIVERSE if c.startswith(f"{market}.")]
        assert len(codes) >= at_least, market
    names = {c: listing.name for c, listing in DEFAULT_UNIVERSE.items()}
    assert names["HK.00700"] == "Tencent"
    assert names["HK.09988"] == "Alibaba"
    assert names["HK.00005"] == "HSBC Holdings"
    assert names["US.AAPL"] == "Apple Inc."
    assert names["US..DJI"] == "Dow Jones Industrial Average"  # indices: a dot-led code
    for code in ("US.TSLA", "US.NVDA", "US.BRK.B", "SH.600519", "SZ.000001", "SG.D05"):
        assert code in DEFAULT_UNIVERSE
    for code, listing in DEFAULT_UNIVERSE.items():
        parse_code(code)
        assert listing.name and listing.price and listing.price > 0 and listing.lot, code
    assert DEFAULT_UNIVERSE["HK.00005"].lot == 400  # HSBC's board lot
    assert UNKNOWN not in DEFAULT_UNIVERSE


def test_securities_option_is_checked_and_normalised() -> None:
    cfg = SimConfig(securities={"HK.01235": "My Co", "HK.01236": Listing(price=3.5, lot=2000)})
    assert cfg.securities == (
        ("HK.01235", Listing("My Co")),
        ("HK.01236", Listing(None, 3.5, 2000)),
    )
    assert SimConfig(securities=["US.ZZZZ"]).security_list() == {"US.ZZZZ": Listing()}
    with pytest.raises(aiofutu.InvalidCode):
        SimConfig(securities=["hk.00700"])
    with pytest.raises(ValueError, match="not one string"):
        SimConfig(securities="HK.01235")
    with pytest.raises(ValueError, match="lot must be >= 1"):
        SimConfig(securities={"HK.01235": Listing(lot=0)})
    with pytest.raises(ValueError, match="price must be > 0"):
        SimConfig(securities={"HK.01235": Listing(price=-1.0)})
    with pytest.raises(ValueError, match="a name or a Listing"):
        SimConfig(securities={"HK.01235": 12})  # type: ignore[dict-item]


# ---- refusals over a socket ------------------------------------------------------------------


async def test_qot_sub_of_an_unknown_code_is_refused_whole() -> None:
    async with sim.serve(tick_rate=0) as server:
        raw = await _raw(server)
        async with raw.stream:
            _refused(await raw.subscribe(UNKNOWN), UNKNOWN)
            # one unknown code refuses the request: the known one is not subscribed either
            _refused(await raw.subscribe("HK.00700", UNKNOWN, "US.NOPE1"), UNKNOWN, "US.NOPE1")
            info = await raw.request(3003, qot_get_sub_info_pb2.C2S())
            assert info.s2c.totalUsedQuota == 0
            _refused(await raw.subscribe(UNKNOWN, on=False), UNKNOWN)  # unsubscribing too
            c2s = qot_reg_qot_push_pb2.C2S(
                securityList=[_security(UNKNOWN)], subTypeList=[TICKER], isRegOrUnReg=True
            )
            _refused(await raw.request(3002, c2s), UNKNOWN)
            assert (await raw.subscribe("HK.00700", "SZ.000001", "US..DJI")).retType == 0
    assert UNKNOWN not in server.market  # nothing was made up for it


async def test_get_ticker_of_an_unknown_code_is_refused() -> None:
    async with sim.serve(tick_rate=0) as server:
        raw = await _raw(server)
        async with raw.stream:
            reply = await raw.get_ticker(UNKNOWN)
            _refused(reply, UNKNOWN)  # unknown, not merely "not subscribed"
            not_subscribed = await raw.get_ticker("HK.09988")
            assert not_subscribed.errCode == ErrCode.NOT_SUBSCRIBED
    with pytest.raises(aiofutu.InvalidCode, match="unknown stock"):
        server.market.security(UNKNOWN)
    with pytest.raises(aiofutu.InvalidCode, match="unknown stock"):
        await server.burst(UNKNOWN, 1)


async def test_many_unknown_codes_are_named_briefly() -> None:
    codes = [f"HK.{90000 + i}" for i in range(8)]
    async with sim.serve(tick_rate=0) as server:
        raw = await _raw(server)
        async with raw.stream:
            reply = await raw.subscribe(*codes)
    _refused(reply, *codes[:5])
    assert "unknown stocks" in reply.retMsg and "and 3 more" in reply.retMsg


async def test_aiofutu_client_sees_an_opend_error_naming_the_code() -> None:
    async with (
        sim.serve(tick_rate=0) as server,
        aiofutu.connect(server.host, server.port) as client,
    ):
        with pytest.raises(aiofutu.OpenDError, match=r"unknown stock HK\.99999999") as info:
            await client.subscribe([UNKNOWN], [aiofutu.SubType.TICKER])
        assert info.value.proto_id == 3001
        assert info.value.err_code == ErrCode.UNKNOWN_SECURITY
        with pytest.raises(aiofutu.OpenDError, match=r"unknown stock HK\.99999999"):
            async with client.ticker_stream(UNKNOWN):
                pass
        # the connection is fine afterwards
        await client.subscribe(["HK.00700"], [aiofutu.SubType.TICKER])
        assert len(await client.get_rt_ticker("HK.00700", 3)) == 3


# ---- extending the list ----------------------------------------------------------------------


async def test_securities_extend_the_list() -> None:
    extra = {"HK.01235": "My Test Co", "US.ZZZZ": Listing("Zed", price=12.5, lot=100)}
    async with (
        sim.serve(tick_rate=0, securities=extra, codes=("SZ.300999",)) as server,
        aiofutu.connect(server.host, server.port) as client,
    ):
        await client.subscribe(
            ["HK.01235", "US.ZZZZ", "SZ.300999", "HK.00700"], [aiofutu.SubType.TICKER]
        )
        mine = await client.get_rt_ticker("HK.01235", 5)
        zed = await client.get_rt_ticker("US.ZZZZ", 1000)
        live = await client.get_rt_ticker("SZ.300999", 1)  # ``codes`` are known too
        with pytest.raises(aiofutu.OpenDError, match="unknown stock"):
            await client.subscribe(["HK.01236"], [aiofutu.SubType.TICKER])
    assert {t.name for t in mine} == {"My Test Co"}
    assert {t.name for t in zed} == {"Zed"}
    assert 6.25 <= min(t.price for t in zed) and max(t.price for t in zed) <= 25.0
    assert live[0].name == "300999 (SZ, simulated)"


async def test_allow_any_code_makes_one_up() -> None:
    async with (
        sim.serve(tick_rate=0, allow_any_code=True) as server,
        aiofutu.connect(server.host, server.port) as client,
    ):
        await client.subscribe([UNKNOWN], [aiofutu.SubType.TICKER])
        ticks = await client.get_rt_ticker(UNKNOWN, 10)
    assert ticks[0].name == "99999999 (HK, simulated)"
