"""Helpers for the end-to-end tests of ``examples/``: a restartable simulator, a real uvicorn
server on loopback, an SSE parser."""

from __future__ import annotations

import importlib.util
import json
import socket
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.abc

from aiofutu import sim

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from types import ModuleType

    import httpx

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HK = "HK.00700"
LOW32 = 0xFFFFFFFF
T = TypeVar("T")


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` (examples/ is not a package)."""
    key = f"_aiofutu_example_{name}"
    module = sys.modules.get(key)
    if module is None:
        spec = importlib.util.spec_from_file_location(key, EXAMPLES / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return module


class SimControl:
    """A simulator in its own task, so that a test can stop it (OpenD is down) and start it again
    on the same port (OpenD is back)."""

    def __init__(self, tg: anyio.abc.TaskGroup, **options: Any) -> None:
        self._tg = tg
        self._options = {"tick_rate": 0.0, "seed": 5, "codes": (HK,), **options}
        self.port = 0
        self.server: sim.Simulator | None = None
        self._scope: anyio.CancelScope | None = None
        self._stopped = anyio.Event()

    async def start(self) -> sim.Simulator:
        self._stopped = anyio.Event()
        self.server = await self._tg.start(self._run)
        return self.server

    async def _run(self, *, task_status: anyio.abc.TaskStatus[sim.Simulator]) -> None:
        try:
            with anyio.CancelScope() as self._scope:
                async with sim.serve(port=self.port, **self._options) as server:
                    self.port = server.port
                    task_status.started(server)
                    await anyio.sleep_forever()
        finally:
            self.server = None
            self._stopped.set()

    async def stop(self) -> None:
        """Stop listening and drop every connection, like an OpenD that went away."""
        if self._scope is not None and self.server is not None:
            self._scope.cancel()
            with anyio.fail_after(5):
                await self._stopped.wait()


def free_socket() -> socket.socket:
    """A listening-ready TCP socket bound to a free loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def uvicorn_server(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app with a real uvicorn server on loopback; yields its base URL."""
    import uvicorn

    sock = free_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_config=None,  # leave logging to pytest
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        with anyio.fail_after(10):
            while not server.started:
                assert not server.should_exit, "uvicorn failed to start"
                await anyio.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
    sock.close()


async def sse_events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """Parse a text/event-stream body: one dict per event (``event``, ``id``, ``data`` parsed
    as JSON); comment lines are returned as ``{"comment": text}``."""
    event: dict[str, Any] = {}
    async for line in response.aiter_lines():
        if not line:
            if event:
                if "data" in event:
                    event["data"] = json.loads(event["data"])
                yield event
                event = {}
            continue
        if line.startswith(":"):
            yield {"comment": line[1:].strip()}
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        event[name] = event[name] + "\n" + value if name in event else value


async def read_ticks(
    events: AsyncIterator[dict[str, Any]], n: int, *, timeout: float = 10
) -> list[dict[str, Any]]:
    """The data of the next ``n`` tick events (other events are skipped)."""
    out: list[dict[str, Any]] = []
    with anyio.fail_after(timeout):
        async for event in events:
            if event.get("event") == "tick":
                out.append(event)
                if len(out) == n:
                    break
    return out


async def wait_for_event(
    events: AsyncIterator[dict[str, Any]], name: str, *, timeout: float = 10
) -> dict[str, Any]:
    with anyio.fail_after(timeout):
        async for event in events:
            if event.get("event") == name:
                return event
    raise AssertionError(f"the stream ended before a {name!r} event")


def consecutive(sequences: list[int]) -> bool:
    """HK sequences carry a trade counter in their low 32 bits: +1 per tick, no gap."""
    counters = [s & LOW32 for s in sequences]
    return counters == list(range(counters[0], counters[0] + len(counters)))


async def eventually(
    fetch: Callable[[], Awaitable[T]],
    ok: Callable[[T], bool],
    *,
    timeout: float = 10,
    interval: float = 0.05,
) -> T:
    """Call ``fetch`` until ``ok(result)``; fail after ``timeout`` seconds."""
    with anyio.fail_after(timeout):
        while True:
            result = await fetch()
            if ok(result):
                return result
            await anyio.sleep(interval)
