"""An aiohttp service over one shared aiofutu client: SSE and WebSocket tick fan-out, and a chart.

Endpoints (the same as ``fastapi_app.py``)
    GET  /                  a live price chart (canvas + EventSource, no CDN)
    GET  /ticker/{code}     ?num=100: the latest ticks as JSON (get_rt_ticker; subscribes TICKER)
    GET  /stream/{code}     Server-Sent Events: ``event: tick`` per tick (``id:`` = sequence),
                            ``event: gap`` on a hole in the tape; resumes from ``Last-Event-ID``
    GET  /ws/{code}         WebSocket: ``{"event": "tick", "data": {...}}`` per tick
    GET  /healthz           200 with the client's state and stats when OpenD is reachable, else 503

Errors: 422 for a bad code or parameter (``num``, ``limit``), 503 while OpenD is unreachable
(with ``Retry-After``, ``/healthz`` too), 504 on a timeout, 502 when OpenD refuses a request;
bodies are ``{"error": "<exception type>", "detail": "..."}``.

Run it (OpenD's address from ``AIOFUTU_HOST`` / ``AIOFUTU_PORT``, default 127.0.0.1:11111)::

    python examples/aiohttp_app.py --port 8080
    python examples/aiohttp_app.py --sim          # with the bundled simulator in-process

The client is opened once, in a ``cleanup_ctx``, by :class:`Gateway` (a task that connects,
retries while OpenD is down, and leaves drops to the client's ``reconnect``); every SSE or
WebSocket consumer gets its own bounded ``ticker_stream`` on it (``overflow="drop_oldest"``: a
slow browser loses its own oldest ticks and never stalls the others).

Ctrl-C: aiohttp waits for the handlers still running (60 s by default) before the
``cleanup_ctx`` exits, so the client is closed earlier, in ``on_shutdown`` (:func:`end_streams`):
every stream ends (SSE responses complete, WebSockets get close code 1001) and the process exits
at once with status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from aiohttp import WSCloseCode, WSMsgType, web

import aiofutu

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Callable

CHART_HTML = (Path(__file__).parent / "chart.html").read_text(encoding="utf-8")
HEARTBEAT = 15.0  # seconds between SSE keep-alive comments when no tick flows


class Gateway:
    """Owns the one shared :class:`aiofutu.Client` and keeps it connected."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        policy: aiofutu.ReconnectPolicy | None = None,
        timeout: float = 5.0,
        heartbeat: float = HEARTBEAT,
    ) -> None:
        self.host = host
        self.port = port
        self.policy = policy or aiofutu.ReconnectPolicy(initial_delay=0.5, max_delay=10.0)
        self.timeout = timeout
        self.heartbeat = heartbeat
        self._client: aiofutu.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self.stopping = False  # the app is shutting down
        self.problem: str | None = "not connected yet"

    async def start(self) -> None:
        """Run :meth:`run` in a task; returns after its first attempt to connect, up or not."""
        first = asyncio.Event()
        self._task = asyncio.create_task(self.run(first.set), name="opend-gateway")
        waiter = asyncio.create_task(first.wait())
        await asyncio.wait({self._task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()

    async def stop(self) -> None:
        """Close the client, which ends every open stream, and wait until it is closed.

        Idempotent: the app calls it on shutdown (so that handlers streaming ticks return before
        aiohttp waits for them) and again on cleanup.
        """
        self.stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})  # not ``await task``: its CancelledError is not ours

    async def run(self, first_attempt: Callable[[], object]) -> None:
        """Connect and stay connected until cancelled; calls ``first_attempt`` once, up or not."""
        attempt = 0
        while True:
            try:
                async with aiofutu.connect(
                    self.host,
                    self.port,
                    client_id="aiofutu-aiohttp",
                    timeout=self.timeout,
                    reconnect=self.policy,
                ) as client:
                    self._client, self.problem, attempt = client, None, 0
                    first_attempt()
                    async for change in client.state_changes():  # ends after CLOSED
                        ready = change.state is aiofutu.ClientState.READY
                        self.problem = None if ready else change.cause
            except aiofutu.FutuError as exc:
                self.problem = str(exc)
            finally:
                self._client = None
            first_attempt()
            attempt += 1
            await anyio.sleep(self.policy.delay(attempt))

    def client(self) -> aiofutu.Client:
        """The shared client, if the link to OpenD is up (raises ``ConnectionLost`` if not)."""
        client = self._client
        if client is None or client.state is not aiofutu.ClientState.READY:
            raise aiofutu.ConnectionLost(
                f"OpenD at {self.host}:{self.port} is unavailable: {self.problem or 'reconnecting'}"
            )
        return client


GATEWAY = web.AppKey("gateway", Gateway)


async def opend_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: run the gateway for the app's lifetime; start serving after its first try."""
    gateway = app[GATEWAY]
    await gateway.start()
    try:
        yield
    finally:
        await gateway.stop()


async def end_streams(app: web.Application) -> None:
    """on_shutdown: close the client now, so that every SSE and WebSocket handler returns.

    aiohttp runs ``on_shutdown``, then waits (``shutdown_timeout``, 60 s by default) for the
    handlers still running, and only then the ``cleanup_ctx`` exits: a stream that waits for
    ticks would hold the shutdown that long if the client were closed only there.
    """
    await app[GATEWAY].stop()


# -- errors -----------------------------------------------------------------------------------


def http_status(exc: aiofutu.FutuError) -> int:
    """The HTTP status for an aiofutu error."""
    if isinstance(exc, aiofutu.ConfigurationError):  # InvalidCode too
        return 422
    if isinstance(exc, aiofutu.SubscriptionRequired):
        return 409
    if isinstance(exc, (aiofutu.TransportError, aiofutu.ClientClosed)):
        return 503
    if isinstance(exc, aiofutu.RequestTimeout):
        return 504
    return 502


def error_body(exc: aiofutu.FutuError) -> dict[str, str]:
    return {"error": type(exc).__name__, "detail": str(exc)}


@web.middleware
async def futu_errors(
    request: web.Request, handler: Callable[[web.Request], Any]
) -> web.StreamResponse:
    """Turn aiofutu exceptions into JSON error responses."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except aiofutu.FutuError as exc:
        status = http_status(exc)
        headers = {"Retry-After": "1"} if status == 503 else None
        return web.json_response(error_body(exc), status=status, headers=headers)


# -- ticks as events --------------------------------------------------------------------------


async def ensure_ticker(client: aiofutu.Client, code: str) -> None:
    """Subscribe TICKER for ``code`` unless this client already has it (get_rt_ticker needs it)."""
    if aiofutu.SubType.TICKER not in client.subscriptions().get(code, ()):
        await client.subscribe([code], [aiofutu.SubType.TICKER], subscribe_push=False)


async def next_batch(ticks: aiofutu.TickerStream, wait: float) -> list[aiofutu.Ticker] | None:
    """Every tick buffered now, waiting up to ``wait`` s for the first one (``None``: none came).

    Raises ``StopAsyncIteration`` when the stream ended (the client closed).
    """
    with anyio.move_on_after(wait):
        first = await anext(ticks)
        try:
            rest = ticks.drain()
        except StopAsyncIteration:
            rest = []
        return [first, *rest]
    return None


async def tick_events(
    client: aiofutu.Client,
    ticks: aiofutu.TickerStream,
    *,
    last_id: int | None,
    limit: int | None,
    heartbeat: float,
) -> AsyncGenerator[tuple[str, str, int | None], None]:
    """(event, JSON data, id) for a started stream: ready, then ticks, gaps and keep-alives.

    With ``last_id`` (a consumer reconnecting), the ticks it missed come first, from
    get_rt_ticker; ticks the live stream repeats are skipped by sequence.
    """
    code = ticks.codes[0]
    yield "ready", json.dumps({"code": code}), None
    sent, gaps = 0, 0
    last_seq = -1 if last_id is None else last_id
    pending: list[aiofutu.Ticker] = []
    try:
        if last_id is not None:
            await ensure_ticker(client, code)
            pending = [t for t in await client.get_rt_ticker(code, 1000) if t.sequence > last_id]
        while limit is None or sent < limit:
            if not pending:
                batch = await next_batch(ticks, heartbeat)
                if batch is None:
                    yield "keep-alive", "", None
                    continue
                pending = batch
            for gap in ticks.gaps[gaps:]:
                yield "gap", json.dumps(gap._asdict()), None
            gaps = len(ticks.gaps)
            for tick in pending:
                if tick.sequence <= last_seq:
                    continue
                last_seq = tick.sequence
                yield "tick", tick.model_dump_json(), tick.sequence
                sent += 1
                if limit is not None and sent >= limit:
                    break
            pending = []
    except StopAsyncIteration:
        return
    except aiofutu.FutuError as exc:
        yield "error", json.dumps(error_body(exc)), None


def _limit(request: web.Request) -> int | None:
    raw = request.query.get("limit")
    if raw is None:
        return None
    if not raw.isdigit():
        raise aiofutu.ConfigurationError(f"limit must be a positive int, got {raw!r}")
    return int(raw)


# -- handlers ---------------------------------------------------------------------------------


async def index(request: web.Request) -> web.Response:
    return web.Response(text=CHART_HTML, content_type="text/html")


async def healthz(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    client = gateway._client
    if client is None or client.state is not aiofutu.ClientState.READY:
        body = {"state": client.state.value if client else "down", "problem": gateway.problem}
        return web.json_response(body, status=503, headers={"Retry-After": "1"})
    return web.json_response(client.stats())  # state, reconnects, traffic, latency, streams


async def ticker(request: web.Request) -> web.Response:
    code = request.match_info["code"]
    raw = request.query.get("num", "100")
    try:
        num = int(raw)
    except ValueError:
        raise aiofutu.ConfigurationError(f"num must be an int in 1..1000, got {raw!r}") from None
    aiofutu.parse_code(code)  # InvalidCode -> 422, even while OpenD is down
    client = request.app[GATEWAY].client()
    await ensure_ticker(client, code)
    ticks = await client.get_rt_ticker(code, num)  # num outside 1..1000: ConfigurationError
    body = {"code": code, "count": len(ticks), "ticks": [t.model_dump(mode="json") for t in ticks]}
    return web.json_response(body)


async def stream(request: web.Request) -> web.StreamResponse:
    code = request.match_info["code"]
    limit = _limit(request)
    last_id = request.headers.get("Last-Event-ID", "")
    aiofutu.parse_code(code)
    gateway = request.app[GATEWAY]
    client = gateway.client()
    ticks = client.ticker_stream(code, overflow="drop_oldest")
    async with ticks:  # subscribes here: a refusal is still an HTTP status
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        events = tick_events(
            client,
            ticks,
            last_id=int(last_id) if last_id.isdigit() else None,
            limit=limit,
            heartbeat=gateway.heartbeat,
        )
        try:
            async with contextlib.aclosing(events):
                async for event, data, event_id in events:
                    if event == "keep-alive":
                        chunk = ": keep-alive\n\n"
                    else:
                        head = f"id: {event_id}\n" if event_id is not None else ""
                        chunk = f"{head}event: {event}\ndata: {data}\n\n"
                    await response.write(chunk.encode())
            await response.write_eof()
        except ConnectionResetError:
            pass  # the consumer went away
    return response


async def websocket(request: web.Request) -> web.WebSocketResponse:
    code = request.match_info["code"]
    ws = web.WebSocketResponse(heartbeat=20.0)
    await ws.prepare(request)
    gateway = request.app[GATEWAY]
    try:
        limit = _limit(request)
        aiofutu.parse_code(code)
        client = gateway.client()
        ticks = client.ticker_stream(code, overflow="drop_oldest")
        await ticks.start()
    except aiofutu.FutuError as exc:
        await ws.send_str(json.dumps({"event": "error", "data": error_body(exc)}))
        await ws.close(code=4000 + http_status(exc), message=type(exc).__name__.encode())
        return ws

    async def send_ticks() -> None:
        events = tick_events(client, ticks, last_id=None, limit=limit, heartbeat=gateway.heartbeat)
        async with contextlib.aclosing(events):
            async for event, data, _ in events:
                if event != "keep-alive":
                    await ws.send_str(f'{{"event":"{event}","data":{data}}}')

    async with ticks:
        sender = asyncio.create_task(send_ticks())
        receiver = asyncio.create_task(_until_closed(ws))
        await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        for task in (sender, receiver):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionResetError):
                await task
        if not gateway.stopping:
            await ws.close()
        else:
            # Shutting down: aiohttp no longer reads from the connection, so the client's reply
            # to the close frame would never be seen. Send it, do not wait for the reply.
            with anyio.move_on_after(0.5):
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
    return ws


async def _until_closed(ws: web.WebSocketResponse) -> None:
    """Read (and ignore) client messages until the socket closes; needed to see the close."""
    async for msg in ws:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break


def create_app(
    host: str | None = None,
    port: int | None = None,
    *,
    policy: aiofutu.ReconnectPolicy | None = None,
    timeout: float = 5.0,
    heartbeat: float = HEARTBEAT,
) -> web.Application:
    """The service; ``host``/``port`` default to ``AIOFUTU_HOST``/``AIOFUTU_PORT``."""
    app = web.Application(middlewares=[futu_errors])
    app[GATEWAY] = Gateway(
        host or os.environ.get("AIOFUTU_HOST", "127.0.0.1"),
        port or int(os.environ.get("AIOFUTU_PORT", "11111")),
        policy=policy,
        timeout=timeout,
        heartbeat=heartbeat,
    )
    app.cleanup_ctx.append(opend_ctx)
    app.on_shutdown.append(end_streams)
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/ticker/{code}", ticker)
    app.router.add_get("/stream/{code}", stream)
    app.router.add_get("/ws/{code}", websocket)
    return app


async def _main(args: argparse.Namespace) -> None:
    async def serve(opend_port: int | None) -> None:
        runner = web.AppRunner(create_app(args.opend_host, opend_port or args.opend_port))
        await runner.setup()
        try:
            await web.TCPSite(runner, args.host, args.port).start()
            print(f"serving on http://{args.host}:{args.port}/ (Ctrl-C stops)")
            await anyio.sleep_forever()
        finally:
            await runner.cleanup()

    if args.sim:
        from aiofutu import sim

        async with sim.serve(port=0, tick_rate=20, codes=("HK.00700", "US.AAPL")) as server:
            print(f"simulator on 127.0.0.1:{server.port}")
            await serve(server.port)
    else:
        await serve(None)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="listen address")
    parser.add_argument("--port", type=int, default=8080, help="listen port")
    parser.add_argument("--opend-host", default=None, help="default: AIOFUTU_HOST or 127.0.0.1")
    parser.add_argument(
        "--opend-port", type=int, default=None, help="default: AIOFUTU_PORT or 11111"
    )
    parser.add_argument("--sim", action="store_true", help="run the bundled simulator in-process")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(parser.parse_args()))
