"""examples/aiohttp_app.py on aiohttp's real web server (AppRunner + TCPSite on 127.0.0.1:0)."""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import aiohttp
import anyio
import httpx
import pytest
from _e2e import (
    HK,
    SimControl,
    consecutive,
    eventually,
    load_example,
    read_ticks,
    sse_events,
    wait_for_event,
)
from aiohttp import web

import aiofutu

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.anyio

FAST_POLICY = aiofutu.ReconnectPolicy(initial_delay=0.05, max_delay=0.2, jitter=0.0)


@pytest.fixture
async def base_url(opend_ctl: SimControl) -> AsyncIterator[str]:
    app = load_example("aiohttp_app").create_app(
        "127.0.0.1", opend_ctl.port, policy=FAST_POLICY, timeout=3, heartbeat=0.2
    )
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()  # runs cleanup_ctx: the shared client connects
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def _get(http: httpx.AsyncClient, path: str, **params: Any) -> httpx.Response:
    return await http.get(path, params=params)


async def test_ticker_json_and_errors(opend_ctl: SimControl, base_url: str) -> None:
    assert opend_ctl.server is not None
    opend_ctl.server.market.generate(HK, 120)
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        resp = await _get(http, f"/ticker/{HK}", num=100)
        assert resp.status_code == 200, resp.text
        ticks = resp.json()["ticks"]
        assert len(ticks) == 100 and consecutive([t["sequence"] for t in ticks])
        assert set(aiofutu.TICKER_COLUMNS) <= set(ticks[0])

        resp = await _get(http, "/ticker/AAPL")
        assert resp.status_code == 422 and resp.json()["error"] == "InvalidCode"
        for num in ("0", "1001", "x"):
            resp = await _get(http, f"/ticker/{HK}", num=num)
            assert resp.status_code == 422, (num, resp.text)
            assert resp.json()["error"] == "ConfigurationError"
        assert (await http.get("/stream/AAPL")).status_code == 422
        page = await http.get("/")
        assert page.status_code == 200 and "new EventSource(" in page.text


async def test_sse_and_websocket_fan_out(opend_ctl: SimControl, base_url: str) -> None:
    server = opend_ctl.server
    assert server is not None
    ws_url = base_url.replace("http", "ws")
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=base_url, timeout=10))
        session = await stack.enter_async_context(aiohttp.ClientSession())
        streams = []
        for _ in range(2):
            resp = await stack.enter_async_context(http.stream("GET", f"/stream/{HK}"))
            assert resp.headers["content-type"].startswith("text/event-stream")
            events = sse_events(resp)
            await wait_for_event(events, "ready")
            streams.append(events)
        ws = await stack.enter_async_context(session.ws_connect(f"{ws_url}/ws/{HK}"))
        assert json.loads(await ws.receive_str()) == {"event": "ready", "data": {"code": HK}}

        await server.burst(HK, n=50)
        resp = await _get(http, f"/ticker/{HK}", num=50)
        burst = [t["sequence"] for t in resp.json()["ticks"]]

        seen: list[list[int]] = []
        for events in streams:
            got: list[int] = []
            with anyio.fail_after(10):
                while not got or got[-1] != burst[-1]:
                    (tick,) = await read_ticks(events, 1)
                    got.append(int(tick["id"]))
            seen.append(got)
        got = []
        with anyio.fail_after(10):
            while not got or got[-1] != burst[-1]:
                message = json.loads(await ws.receive_str())
                assert message["event"] == "tick"
                got.append(message["data"]["sequence"])
        seen.append(got)
        for got in seen:
            assert got[-50:] == burst and consecutive(got)
        await ws.close()

        async with http.stream(
            "GET", f"/stream/{HK}?limit=10", headers={"Last-Event-ID": str(burst[39])}
        ) as resp:
            replayed = await read_ticks(sse_events(resp), 10)
        assert [int(t["id"]) for t in replayed] == burst[40:]

    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        health = await eventually(
            lambda: http.get("/healthz"), lambda r: r.status_code == 200 and not r.json()["streams"]
        )
        assert health.json()["state"] == "ready"


async def test_opend_down_is_503_then_recovers(opend_ctl: SimControl, base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        assert (await _get(http, f"/ticker/{HK}", num=5)).status_code == 200
        await opend_ctl.stop()
        resp = await eventually(
            lambda: _get(http, f"/ticker/{HK}", num=5), lambda r: r.status_code == 503
        )
        assert resp.headers["Retry-After"] == "1"
        assert resp.json()["error"] == "ConnectionLost"
        health = await http.get("/healthz")
        assert health.status_code == 503 and health.headers["Retry-After"] == "1"
        assert health.json()["state"] in ("reconnecting", "down")
        async with aiohttp.ClientSession() as session:
            ws_url = base_url.replace("http", "ws") + f"/ws/{HK}"
            async with session.ws_connect(ws_url) as ws:
                assert json.loads(await ws.receive_str())["data"]["error"] == "ConnectionLost"
                closing = await ws.receive()
                assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 4503

        await opend_ctl.start()
        resp = await eventually(
            lambda: _get(http, f"/ticker/{HK}", num=5), lambda r: r.status_code != 503
        )
        assert resp.status_code == 200, resp.text
