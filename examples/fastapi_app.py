"""A FastAPI service over one shared aiofutu client: JSON ticks, SSE and WebSocket streams, a chart.

Endpoints
    GET  /                  a live price chart (canvas + EventSource, no CDN)
    GET  /ticker/{code}     ?num=100: the latest ticks as JSON (get_rt_ticker; subscribes TICKER)
    GET  /stream/{code}     Server-Sent Events: ``event: tick`` per tick (``id:`` = sequence),
                            ``event: gap`` on a hole in the tape; resumes from ``Last-Event-ID``
    WS   /ws/{code}         the same events as JSON messages ``{"event": ..., "data": ...}``
    GET  /healthz           200 with the client's state and stats when OpenD is reachable, else 503

Errors: 422 for a bad code (``InvalidCode``) or parameter (``ConfigurationError``: ``num``
outside 1..1000, a ``limit`` that is not an int), 503 while OpenD is unreachable
(``ConnectError`` / ``ConnectionLost`` / ``ClientClosed``), 504 on a request timeout, 502 when
OpenD refuses a request; bodies are ``{"error": "<exception type>", "detail": "..."}``, the same
as the aiohttp example's. A 503 (``/healthz`` too) carries ``Retry-After``. A WebSocket consumer
gets an ``error`` event, then close code 4000 + the status (4422, 4503, ...).

Run it (OpenD's address from ``AIOFUTU_HOST`` / ``AIOFUTU_PORT``, default 127.0.0.1:11111)::

    python examples/fastapi_app.py --port 8000
    python examples/fastapi_app.py --sim                # with the bundled simulator in-process
    uvicorn examples.fastapi_app:app --port 8000 --timeout-graceful-shutdown 2

then open http://127.0.0.1:8000/ or ``curl -N http://127.0.0.1:8000/stream/HK.00700``.

Ctrl-C: uvicorn waits for the responses in flight before the lifespan's shutdown (which closes
the client), and an SSE response never ends by itself. ``python examples/fastapi_app.py`` runs
:class:`Server`, which closes the client first: every stream ends, its response completes, and
the process exits at once with status 0. The ``uvicorn`` command has no such hook: give it
``--timeout-graceful-shutdown``, after which it cuts the streams still open.

One client serves every request: it is opened in the lifespan by :class:`Gateway`, which keeps
it connected (``reconnect=`` restores subscriptions and backfills open streams after a drop) and
also retries the first connection, so the service starts, and answers 503, while OpenD is down.
Each SSE/WebSocket consumer gets its own ``ticker_stream`` on that client: the client fans every
tick out to all of them, and a slow browser only loses its own oldest ticks
(``overflow="drop_oldest"``), never stalls the others.
"""

from __future__ import annotations

import argparse
import json
import os
from contextlib import aclosing, asynccontextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import anyio.abc
import uvicorn
from fastapi import FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.background import BackgroundTask
from starlette.websockets import WebSocketState

import aiofutu

if TYPE_CHECKING:
    import socket
    from collections.abc import AsyncGenerator, AsyncIterator

CHART_HTML = (Path(__file__).parent / "chart.html").read_text(encoding="utf-8")
HEARTBEAT = 15.0  # seconds between SSE keep-alive comments when no tick flows


# -- the shared client ------------------------------------------------------------------------


class Gateway:
    """Owns the one shared :class:`aiofutu.Client` and keeps it connected.

    ``run`` is a long-lived task: it connects (retrying with the policy's backoff while OpenD is
    unreachable), then lets the client's own ``reconnect`` handle drops. ``client()`` returns the
    client while the link is up and raises :class:`aiofutu.ConnectionLost` otherwise.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        policy: aiofutu.ReconnectPolicy | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self.policy = policy or aiofutu.ReconnectPolicy(initial_delay=0.5, max_delay=10.0)
        self.timeout = timeout
        self._client: aiofutu.Client | None = None
        self._scope: anyio.CancelScope | None = None
        self._done: anyio.Event | None = None
        self.problem: str | None = "not connected yet"

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Connect and stay connected until :meth:`stop` (or cancelled); ``started`` after the
        first attempt."""
        self._done = anyio.Event()
        try:
            with anyio.CancelScope() as self._scope:
                await self._run(task_status)
        finally:
            self._done.set()

    async def _run(self, task_status: anyio.abc.TaskStatus[None]) -> None:
        attempt = 0
        started = False
        while True:
            try:
                async with aiofutu.connect(
                    self.host,
                    self.port,
                    client_id="aiofutu-fastapi",
                    timeout=self.timeout,
                    reconnect=self.policy,
                ) as client:
                    self._client, self.problem, attempt = client, None, 0
                    if not started:
                        started = True
                        task_status.started()
                    async for change in client.state_changes():  # ends after CLOSED
                        self.problem = (
                            change.cause if change.state is not aiofutu.ClientState.READY else None
                        )
            except aiofutu.FutuError as exc:  # ConnectError: OpenD down or refusing us
                self.problem = str(exc)
            finally:
                self._client = None
            if not started:
                started = True
                task_status.started()
            attempt += 1
            await anyio.sleep(self.policy.delay(attempt))

    async def stop(self) -> None:
        """Close the client, which ends every open stream, and wait until it is closed.

        Idempotent. Called before the server waits for the responses in flight (see
        :class:`Server`), then by the lifespan.
        """
        if self._scope is not None and self._done is not None:
            self._scope.cancel()
            await self._done.wait()

    def client(self) -> aiofutu.Client:
        """The shared client, if the link to OpenD is up (raises ``ConnectionLost`` if not)."""
        client = self._client
        if client is None or client.state is not aiofutu.ClientState.READY:
            raise aiofutu.ConnectionLost(
                f"OpenD at {self.host}:{self.port} is unavailable: {self.problem or 'reconnecting'}"
            )
        return client


async def ensure_ticker(client: aiofutu.Client, code: str) -> None:
    """Subscribe TICKER for ``code`` unless this client already has it (get_rt_ticker needs it)."""
    if aiofutu.SubType.TICKER not in client.subscriptions().get(code, ()):
        await client.subscribe([code], [aiofutu.SubType.TICKER], subscribe_push=False)


# -- errors -----------------------------------------------------------------------------------


def http_status(exc: aiofutu.FutuError) -> int:
    """The HTTP status for an aiofutu error."""
    if isinstance(exc, aiofutu.ConfigurationError):  # InvalidCode too: a bad code or num
        return 422
    if isinstance(exc, aiofutu.SubscriptionRequired):
        return 409
    if isinstance(
        exc, (aiofutu.TransportError, aiofutu.ClientClosed)
    ):  # ConnectError, ConnectionLost
        return 503
    if isinstance(exc, aiofutu.RequestTimeout):
        return 504
    return 502  # OpenDError (OpenD refused: quota, unknown security, ...), protocol errors


def error_body(exc: aiofutu.FutuError) -> dict[str, str]:
    return {"error": type(exc).__name__, "detail": str(exc)}


def invalid_params(
    exc: RequestValidationError | WebSocketRequestValidationError,
) -> aiofutu.FutuError:
    """FastAPI's validation errors (a bad ``num`` or ``limit``) as a ``ConfigurationError``, the
    error a bad code gets: every 422 then has the same body, ``{"error", "detail"}``."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ())[1:]) or "request"
        got = f" (got {error['input']!r})" if "input" in error else ""
        parts.append(f"{where}: {error.get('msg', 'invalid')}{got}")
    return aiofutu.ConfigurationError("; ".join(parts) or "invalid request")


async def reject(websocket: WebSocket, exc: aiofutu.FutuError) -> None:
    """Refuse a WebSocket consumer: an ``error`` event, then close code 4000 + the HTTP status
    (4422 bad code or parameter, 4503 OpenD unavailable, ...)."""
    if websocket.client_state is WebSocketState.CONNECTING:
        await websocket.accept()
    await websocket.send_text(json.dumps({"event": "error", "data": error_body(exc)}))
    await websocket.close(code=4000 + http_status(exc), reason=type(exc).__name__)


# -- event encoding (shared by SSE and WebSocket) ---------------------------------------------


def sse(event: str, data: str, event_id: int | None = None) -> str:
    """One Server-Sent Event (``data`` is one line of JSON)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n"


def gap_json(gap: aiofutu.Gap) -> str:
    return json.dumps(gap._asdict())


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


async def replay(client: aiofutu.Client, code: str, after: int) -> list[aiofutu.Ticker]:
    """Ticks of ``code`` newer than sequence ``after`` that OpenD still keeps (up to 1000)."""
    await ensure_ticker(client, code)
    return [t for t in await client.get_rt_ticker(code, 1000) if t.sequence > after]


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
            pending = await replay(client, code, last_id)
        while limit is None or sent < limit:
            if not pending:
                batch = await next_batch(ticks, heartbeat)
                if batch is None:
                    yield "keep-alive", "", None
                    continue
                pending = batch
            for gap in ticks.gaps[gaps:]:
                yield "gap", gap_json(gap), None
            gaps = len(ticks.gaps)
            for tick in pending:
                if tick.sequence <= last_seq:
                    continue  # already sent (replayed, or OpenD's re-sent first push)
                last_seq = tick.sequence
                yield "tick", tick.model_dump_json(), tick.sequence
                sent += 1
                if limit is not None and sent >= limit:
                    break
            pending = []
    except StopAsyncIteration:  # the client closed: the service is shutting down
        return
    except aiofutu.FutuError as exc:
        yield "error", json.dumps(error_body(exc)), None


# -- the app ----------------------------------------------------------------------------------


def create_app(
    host: str | None = None,
    port: int | None = None,
    *,
    policy: aiofutu.ReconnectPolicy | None = None,
    timeout: float = 5.0,
    heartbeat: float = HEARTBEAT,
) -> FastAPI:
    """The service; ``host``/``port`` default to ``AIOFUTU_HOST``/``AIOFUTU_PORT``."""
    gateway = Gateway(
        host or os.environ.get("AIOFUTU_HOST", "127.0.0.1"),
        port or int(os.environ.get("AIOFUTU_PORT", "11111")),
        policy=policy,
        timeout=timeout,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg:
            await tg.start(gateway.run)  # returns after the first attempt, up or not
            try:
                yield
            finally:
                await gateway.stop()  # closes the client: every open stream ends

    app = FastAPI(title="aiofutu example", lifespan=lifespan)
    app.state.gateway = gateway

    @app.exception_handler(aiofutu.FutuError)
    async def futu_error(request: Request, exc: aiofutu.FutuError) -> JSONResponse:
        status = http_status(exc)
        headers = {"Retry-After": "1"} if status == 503 else None
        return JSONResponse(error_body(exc), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return await futu_error(request, invalid_params(exc))

    @app.exception_handler(WebSocketRequestValidationError)
    async def ws_validation_error(
        websocket: WebSocket, exc: WebSocketRequestValidationError
    ) -> None:
        await reject(websocket, invalid_params(exc))

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return CHART_HTML

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        client = gateway._client
        if client is None or client.state is not aiofutu.ClientState.READY:
            body = {"state": client.state.value if client else "down", "problem": gateway.problem}
            return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})
        return JSONResponse(client.stats())  # state, reconnects, traffic, latency, streams

    @app.get("/ticker/{code}")
    async def ticker(code: str, num: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        aiofutu.parse_code(code)  # InvalidCode -> 422, even while OpenD is down
        client = gateway.client()
        await ensure_ticker(client, code)
        ticks = await client.get_rt_ticker(code, num)
        return {
            "code": code,
            "count": len(ticks),
            "ticks": [t.model_dump(mode="json") for t in ticks],
        }

    @app.get("/stream/{code}")
    async def stream(request: Request, code: str, limit: int | None = None) -> StreamingResponse:
        aiofutu.parse_code(code)
        client = gateway.client()
        last_id = request.headers.get("last-event-id")
        ticks = client.ticker_stream(code, overflow="drop_oldest")
        await ticks.start()  # subscribe now, so that a refusal is an HTTP status, not a dead stream

        async def body() -> AsyncIterator[str]:
            events = tick_events(
                client,
                ticks,
                last_id=int(last_id) if last_id and last_id.isdigit() else None,
                limit=limit,
                heartbeat=heartbeat,
            )
            try:
                async with aclosing(events):
                    async for event, data, event_id in events:
                        yield (
                            ": keep-alive\n\n"
                            if event == "keep-alive"
                            else sse(event, data, event_id)
                        )
            finally:
                await ticks.aclose()

        return StreamingResponse(
            body(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            background=BackgroundTask(ticks.aclose),  # also when the body never started
        )

    @app.websocket("/ws/{code}")
    async def ws(websocket: WebSocket, code: str, limit: int | None = None) -> None:
        await websocket.accept()
        try:
            aiofutu.parse_code(code)
            client = gateway.client()
            ticks = client.ticker_stream(code, overflow="drop_oldest")
            await ticks.start()
        except aiofutu.FutuError as exc:
            await reject(websocket, exc)
            return
        async with ticks, anyio.create_task_group() as tg:

            async def watch_disconnect() -> None:
                while (await websocket.receive())["type"] != "websocket.disconnect":
                    pass  # this endpoint ignores what the client sends
                tg.cancel_scope.cancel()

            tg.start_soon(watch_disconnect)
            events = tick_events(client, ticks, last_id=None, limit=limit, heartbeat=heartbeat)
            try:
                async with aclosing(events):
                    async for event, data, _ in events:
                        if event != "keep-alive":  # WebSocket has its own ping/pong
                            await websocket.send_text(f'{{"event":"{event}","data":{data}}}')
                await websocket.close()
            except (WebSocketDisconnect, OSError):
                pass  # the client went away mid-send
            tg.cancel_scope.cancel()

    return app


app = create_app()


class Server(uvicorn.Server):
    """uvicorn's server, ending the app's streams before it waits for them.

    On Ctrl-C uvicorn stops accepting, waits for the responses in flight (at most
    ``timeout_graceful_shutdown``), and only then runs the lifespan's shutdown; an SSE response
    never ends by itself. Closing the client first ends every stream, so that each response
    completes and the wait is short.
    """

    def __init__(self, config: uvicorn.Config, gateway: Gateway) -> None:
        super().__init__(config)
        self.gateway = gateway

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.gateway.stop()
        await super().shutdown(sockets)


async def _main(args: argparse.Namespace) -> None:
    async def serve(opend_port: int | None) -> None:
        app = create_app(args.opend_host, opend_port or args.opend_port)
        config = uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            timeout_graceful_shutdown=2,  # a backstop: Server ends the streams first
        )
        await Server(config, app.state.gateway).serve()

    if args.sim:
        from aiofutu import sim

        async with sim.serve(port=0, tick_rate=20, codes=("HK.00700", "US.AAPL")) as server:
            print(f"simulator on 127.0.0.1:{server.port}; open http://{args.host}:{args.port}/")
            await serve(server.port)
    else:
        await serve(None)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="listen address")
    parser.add_argument("--port", type=int, default=8000, help="listen port")
    parser.add_argument("--opend-host", default=None, help="default: AIOFUTU_HOST or 127.0.0.1")
    parser.add_argument(
        "--opend-port", type=int, default=None, help="default: AIOFUTU_PORT or 11111"
    )
    parser.add_argument("--sim", action="store_true", help="run the bundled simulator in-process")
    with suppress(KeyboardInterrupt):  # Ctrl-C: uvicorn has shut down cleanly
        anyio.run(_main, parser.parse_args())
