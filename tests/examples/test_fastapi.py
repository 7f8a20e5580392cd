"""examples/fastapi_app.py under a real uvicorn server on loopback, against the simulator."""

from __future__ import annotations

import json
import re
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

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
    uvicorn_server,
    wait_for_event,
)
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

import aiofutu

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.anyio

FAST_POLICY = aiofutu.ReconnectPolicy(initial_delay=0.05, max_delay=0.2, jitter=0.0)


@pytest.fixture
async def base_url(opend_ctl: SimControl) -> AsyncIterator[str]:
    app = load_example("fastapi_app").create_app(
        "127.0.0.1", opend_ctl.port, policy=FAST_POLICY, timeout=3, heartbeat=0.2
    )
    async with uvicorn_server(app) as url:
        yield url


async def _healthz(http: httpx.AsyncClient) -> dict[str, Any]:
    resp = await http.get("/healthz")
    body: dict[str, Any] = resp.json()
    body["status"] = resp.status_code
    return body


async def test_ticker_json(opend_ctl: SimControl, base_url: str) -> None:
    assert opend_ctl.server is not None
    opend_ctl.server.market.generate(HK, 150)  # OpenD's ring holds them; nothing is pushed
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        resp = await http.get(f"/ticker/{HK}", params={"num": 100})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["code"] == HK and body["count"] == 100
        ticks = body["ticks"]
        assert len(ticks) == 100
        assert set(aiofutu.TICKER_COLUMNS) <= set(ticks[0])
        assert all(t["code"] == HK and t["price"] > 0 and t["volume"] > 0 for t in ticks)
        assert consecutive([t["sequence"] for t in ticks])
        # the default num, and the model round-trips
        resp = await http.get(f"/ticker/{HK}")
        assert resp.json()["count"] == 100
        tick = aiofutu.Ticker.model_validate(ticks[-1])
        assert tick.ticker_direction in aiofutu.TickerDirection


async def test_bad_requests_are_4xx(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        resp = await http.get("/ticker/AAPL")
        assert resp.status_code == 422
        assert resp.json()["error"] == "InvalidCode"
        assert "AAPL" in resp.json()["detail"]
        for num in ("0", "1001", "-5", "ten"):
            resp = await http.get(f"/ticker/{HK}", params={"num": num})
            assert resp.status_code == 422, (num, resp.text)
        resp = await http.get("/stream/hk.00700")  # markets are upper-case
        assert resp.status_code == 422
        assert resp.json()["error"] == "InvalidCode"
    async with ws_connect(base_url.replace("http", "ws") + "/ws/AAPL") as ws:
        message = json.loads(await ws.recv())
        assert message["event"] == "error"
        assert message["data"]["error"] == "InvalidCode"
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4422


async def test_every_validation_error_has_the_same_shape(base_url: str) -> None:
    """A bad code (checked by aiofutu) and a bad ``num`` or ``limit`` (checked by FastAPI) get
    the same 422 body, ``{"error", "detail"}``, the one the aiohttp example sends too."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        bodies = {
            "code": await http.get("/ticker/AAPL"),
            "num=0": await http.get(f"/ticker/{HK}", params={"num": "0"}),
            "num=1001": await http.get(f"/ticker/{HK}", params={"num": "1001"}),
            "num=ten": await http.get(f"/ticker/{HK}", params={"num": "ten"}),
            "limit=x": await http.get(f"/stream/{HK}", params={"limit": "x"}),
        }
    for case, resp in bodies.items():
        assert resp.status_code == 422, (case, resp.text)
        body = resp.json()
        assert set(body) == {"error", "detail"}, (case, body)
        assert isinstance(body["detail"], str), (case, body)
    assert bodies["code"].json()["error"] == "InvalidCode"
    for case in ("num=0", "num=1001", "num=ten"):
        body = bodies[case].json()
        assert body["error"] == "ConfigurationError", body
        assert body["detail"].startswith("num: "), body
        assert repr(case.partition("=")[2]) in body["detail"], body  # the value it got
    assert bodies["limit=x"].json()["detail"].startswith("limit: ")
    # the WebSocket says it the way it reports a bad code: an error event, then close 4422
    async with ws_connect(base_url.replace("http", "ws") + f"/ws/{HK}?limit=x") as ws:
        message = json.loads(await ws.recv())
        assert message["event"] == "error"
        assert message["data"]["error"] == "ConfigurationError"
        assert message["data"]["detail"].startswith("limit: ")
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4422


async def test_sse_and_websocket_fan_out(opend_ctl: SimControl, base_url: str) -> None:
    server = opend_ctl.server
    assert server is not None
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=base_url, timeout=10))
        streams = []
        for _ in range(2):  # two browsers on the same code
            resp = await stack.enter_async_context(http.stream("GET", f"/stream/{HK}"))
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            events = sse_events(resp)
            ready = await wait_for_event(events, "ready")
            assert ready["data"] == {"code": HK}
            streams.append(events)
        ws_url = base_url.replace("http", "ws") + f"/ws/{HK}"
        ws = await stack.enter_async_context(ws_connect(ws_url))
        assert json.loads(await ws.recv()) == {"event": "ready", "data": {"code": HK}}

        await server.burst(HK, n=60)
        resp = await http.get(f"/ticker/{HK}", params={"num": 60})
        burst = [t["sequence"] for t in resp.json()["ticks"]]
        assert consecutive(burst)

        # Each consumer gets every tick of the burst, in order, once. (The first one may also
        # get OpenD's "first push": the latest tick at the time it subscribed.)
        seen = []
        for events in streams:
            got: list[int] = []
            with anyio.fail_after(10):
                while not got or got[-1] != burst[-1]:
                    (tick,) = await read_ticks(events, 1)
                    assert int(tick["id"]) == tick["data"]["sequence"]
                    got.append(tick["data"]["sequence"])
            seen.append(got)
        got = []
        with anyio.fail_after(10):
            while not got or got[-1] != burst[-1]:
                message = json.loads(await ws.recv())
                assert message["event"] == "tick"
                got.append(message["data"]["sequence"])
        seen.append(got)
        for got in seen:
            assert got[-60:] == burst
            assert len(got) <= 61 and consecutive(got)
        seen[0] = burst

        # the server sends keep-alive comments while no tick flows (heartbeat=0.2 s here)
        with anyio.fail_after(5):
            async for event in streams[0]:
                if "comment" in event:
                    break

    # A consumer that reconnects with Last-Event-ID gets what it missed first (from
    # get_rt_ticker), then live ticks, with nothing repeated.
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        headers = {"Last-Event-ID": str(seen[0][39])}
        async with http.stream("GET", f"/stream/{HK}?limit=25", headers=headers) as resp:
            events = sse_events(resp)
            await wait_for_event(events, "ready")
            replayed = await read_ticks(events, 20)
            assert [t["data"]["sequence"] for t in replayed] == seen[0][40:]
            await server.burst(HK, n=5)
            live = await read_ticks(events, 5)
            assert consecutive([t["data"]["sequence"] for t in replayed + live])
            async for _ in events:  # limit=25 reached: the server ends the response
                pass

        # every stream was detached when its consumer left
        health = await eventually(lambda: _healthz(http), lambda h: not h["streams"])
        assert health["status"] == 200 and health["state"] == "ready"


async def test_opend_down_is_503_then_recovers(opend_ctl: SimControl, base_url: str) -> None:
    ws_url = base_url.replace("http", "ws")
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        assert (await http.get(f"/ticker/{HK}", params={"num": 5})).status_code == 200
        assert (await _healthz(http))["status"] == 200

        await opend_ctl.stop()
        resp = await eventually(
            lambda: http.get(f"/ticker/{HK}", params={"num": 5}), lambda r: r.status_code == 503
        )
        assert resp.headers["retry-after"] == "1"
        assert resp.json()["error"] == "ConnectionLost"
        assert "unavailable" in resp.json()["detail"]
        assert (await http.get(f"/stream/{HK}")).status_code == 503
        resp = await http.get("/healthz")
        assert resp.status_code == 503 and resp.headers["retry-after"] == "1"
        assert resp.json()["state"] in ("reconnecting", "down")
        async with ws_connect(ws_url + f"/ws/{HK}") as ws:
            assert json.loads(await ws.recv())["data"]["error"] == "ConnectionLost"
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4503
        # a bad request is still a 422, whatever OpenD's state
        assert (await http.get("/ticker/AAPL")).status_code == 422

        await opend_ctl.start()  # OpenD is back, same port: the shared client reconnects
        resp = await eventually(
            lambda: http.get(f"/ticker/{HK}", params={"num": 5}),
            lambda r: r.status_code != 503,
        )
        assert resp.status_code == 200, resp.text
        health = await _healthz(http)
        assert health["status"] == 200 and health["reconnects"] >= 1


async def test_starts_while_opend_is_down() -> None:
    """The service comes up (503) without OpenD and serves once OpenD appears."""
    async with anyio.create_task_group() as tg:
        ctl = SimControl(tg)
        await ctl.start()
        await ctl.stop()  # keep its port, now closed
        app = load_example("fastapi_app").create_app("127.0.0.1", ctl.port, policy=FAST_POLICY)
        async with (
            uvicorn_server(app) as url,
            httpx.AsyncClient(base_url=url, timeout=10) as http,
        ):
            resp = await http.get(f"/ticker/{HK}")
            assert resp.status_code == 503
            assert resp.json()["error"] == "ConnectionLost"
            resp = await http.get("/healthz")
            assert resp.status_code == 503 and resp.headers["retry-after"] == "1"
            assert resp.json() == {"state": "down", "problem": resp.json()["problem"]}
            await ctl.start()
            await eventually(
                lambda: http.get(f"/ticker/{HK}", params={"num": 1}),
                lambda r: r.status_code == 200,
            )
        tg.cancel_scope.cancel()


async def test_chart_page_is_self_contained(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        resp = await http.get("/")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    html = resp.text
    assert "<canvas" in html and "new EventSource(" in html and "/stream/" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "no external assets"


async def test_a_consumer_arriving_later_sees_no_spurious_gap(
    opend_ctl: SimControl, base_url: str
) -> None:
    server = opend_ctl.server
    assert server is not None

    async def consume(http: httpx.AsyncClient, n: int) -> list[dict[str, Any]]:
        """Open /stream, burst n ticks, return every event up to the n-th tick."""
        seen: list[dict[str, Any]] = []
        async with http.stream("GET", f"/stream/{HK}") as resp:
            events = sse_events(resp)
            await wait_for_event(events, "ready")
            await server.burst(HK, n=n)
            with anyio.fail_after(10):
                async for event in events:
                    seen.append(event)
                    if sum(e.get("event") == "tick" for e in seen) == n:
                        break
        return seen

    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        await consume(http, 5)  # a first browser comes and goes
        await eventually(lambda: _healthz(http), lambda h: not h["streams"])
        await server.burst(HK, n=50)  # the market moves on while nobody watches
        later = await consume(http, 3)
    assert [e for e in later if e.get("event") == "gap"] == []
