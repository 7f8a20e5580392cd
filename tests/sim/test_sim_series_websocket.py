"""K-line and time-share replies and pushes through the simulator's WebSocket gateway (the npm
SDK's transport), with the raw wsproto client of ``test_sim_websocket``."""

from __future__ import annotations

import time

import pytest
from test_sim_websocket import WsClient, _ready, _security

from aiofutu import _wscodec as wscodec
from aiofutu import sim
from aiofutu._pb import (
    qot_get_kl_pb2,
    qot_get_rt_pb2,
    qot_sub_pb2,
    qot_update_kl_pb2,
    qot_update_rt_pb2,
)

pytestmark = pytest.mark.anyio

HK = "HK.00700"
K_1M, RT_DATA = 11, 5


async def _packets(client: WsClient, n: int) -> list[wscodec.WsReply]:
    return [await client.message() for _ in range(n)]


async def test_series_over_websocket() -> None:
    async with sim.serve(tick_rate=0, websocket_port=0, codes=(HK,)) as server:
        client = await _ready(server)
        sub = qot_sub_pb2.C2S(
            securityList=[_security(HK)],
            subTypeList=[K_1M, RT_DATA],
            isSubOrUnSub=True,
            isRegOrUnRegPush=True,
            isFirstPush=True,
        )
        assert (await client.request(3001, sub)).retType == 0
        first = {p.cmd: p for p in await _packets(client, 2)}  # the open bar, the minute
        assert set(first) == {3007, 3009} and {p.section for p in first.values()} == {0}
        bar = qot_update_kl_pb2.Response.FromString(first[3007].body).s2c
        assert (bar.klType, bar.rehabType, len(bar.klList)) == (1, 1, 1)

        req = qot_get_kl_pb2.Request(
            c2s=qot_get_kl_pb2.C2S(rehabType=1, klType=1, security=_security(HK), reqNum=1000)
        )
        section = await client.send_raw(3006, req.SerializeToString())
        got = qot_get_kl_pb2.Response.FromString((await client.reply(3006, section)).body)
        assert got.retType == 0 and len(got.s2c.klList) == 1000
        assert list(got.s2c.klList) == server.series.bars(HK, 1, 1000)
        assert got.s2c.klList[-1] == bar.klList[0]

        req_rt = qot_get_rt_pb2.Request(c2s=qot_get_rt_pb2.C2S(security=_security(HK)))
        section = await client.send_raw(3008, req_rt.SerializeToString())
        rt = qot_get_rt_pb2.Response.FromString((await client.reply(3008, section)).body)
        assert list(rt.s2c.rtList) == server.series.time_share(HK).points

        sec = server.market.security(HK)
        server.push_ticks(sec, sec.generate(2, now=time.time() + 60))  # a new minute
        pushed = {p.cmd: p for p in await _packets(client, 2)}
        bars = qot_update_kl_pb2.Response.FromString(pushed[3007].body).s2c.klList
        assert [k.time for k in bars] == [k.time for k in server.series.bars(HK, 1, 2)]
        assert bars[0].time == bar.klList[0].time  # the bar it closed, with its final values
        point = qot_update_rt_pb2.Response.FromString(pushed[3009].body).s2c.rtList[-1]
        assert point == server.series.time_share(HK).points[-1]
        await client.aclose()
