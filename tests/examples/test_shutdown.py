"""Ctrl-C on the web examples run as a user runs them (``python examples/<app>.py --sim``): the
process exits promptly and cleanly, also while SSE and WebSocket consumers are connected."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

import anyio
import httpx
import pytest
from _e2e import EXAMPLES, HK, free_socket, read_ticks, sse_events, wait_for_event
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

if TYPE_CHECKING:
    from anyio.abc import Process

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
]

APPS = ["aiohttp_app", "fastapi_app"]
EXIT_WITHIN = 5.0  # seconds from SIGINT to the process's exit


def _free_port() -> int:
    sock = free_socket()
    try:
        return int(sock.getsockname()[1])
    finally:
        sock.close()


async def _wait_serving(process: Process, base_url: str) -> None:
    """Poll /healthz until the service answers 200 (its simulator is up and connected)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as http:
        with anyio.fail_after(30):
            while True:
                assert process.returncode is None, "the example exited before serving"
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await anyio.sleep(0.1)


async def _read_all(stream: anyio.abc.ByteReceiveStream | None, into: list[bytes]) -> None:
    assert stream is not None
    async for chunk in stream:
        into.append(chunk)


async def _interrupt(app: str, *, consumers: bool) -> tuple[int, float, str]:
    """Start ``app --sim``, optionally open an SSE and a WebSocket consumer, send SIGINT.

    Returns the exit status, the seconds from SIGINT to exit, and stderr.
    """
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    command = [sys.executable, str(EXAMPLES / f"{app}.py"), "--sim", "--port", str(port)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = await anyio.open_process(command, env=env, stderr=subprocess.PIPE)
    out: list[bytes] = []
    err: list[bytes] = []
    try:
        async with anyio.create_task_group() as tg, AsyncExitStack() as stack:
            tg.start_soon(_read_all, process.stdout, out)
            tg.start_soon(_read_all, process.stderr, err)
            await _wait_serving(process, base_url)
            if consumers:
                http = await stack.enter_async_context(
                    httpx.AsyncClient(base_url=base_url, timeout=10)
                )
                resp = await stack.enter_async_context(http.stream("GET", f"/stream/{HK}"))
                assert resp.status_code == 200
                events = sse_events(resp)
                await wait_for_event(events, "ready")
                await read_ticks(events, 1)  # the simulator ticks at 20/s
                ws = await stack.enter_async_context(
                    ws_connect(base_url.replace("http", "ws") + f"/ws/{HK}")
                )
                assert json.loads(await ws.recv())["event"] == "ready"
            process.send_signal(signal.SIGINT)
            sent = time.monotonic()
            with anyio.move_on_after(EXIT_WITHIN + 1):
                await process.wait()
            elapsed = time.monotonic() - sent
            code = process.returncode
            assert code is not None, (
                f"{app} still running {EXIT_WITHIN + 1} s after SIGINT; stderr:\n"
                + b"".join(err).decode(errors="replace")
            )
            if consumers:  # both streams were ended by the server, not cut
                with anyio.fail_after(5):
                    async for _ in events:  # a cut stream raises httpx.RemoteProtocolError
                        pass
                    with pytest.raises(ConnectionClosed) as closed:
                        while True:
                            await ws.recv()
                assert closed.value.rcvd is not None, "no close frame from the server"
                assert closed.value.rcvd.code in (1000, 1001), closed.value.rcvd
        assert code is not None
        return code, elapsed, b"".join(err).decode(errors="replace")
    finally:
        if process.returncode is None:
            process.kill()
            with anyio.move_on_after(5, shield=True):
                await process.wait()
        await process.aclose()


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("consumers", [False, True], ids=["idle", "sse+ws"])
async def test_ctrl_c_exits_promptly_and_cleanly(app: str, consumers: bool) -> None:
    code, elapsed, err = await _interrupt(app, consumers=consumers)
    assert code in (0, 130), (code, err)
    assert elapsed < EXIT_WITHIN, (elapsed, err)
    assert "Traceback" not in err, err
    assert "KeyboardInterrupt" not in err, err
    assert "timeout graceful shutdown exceeded" not in err, err
