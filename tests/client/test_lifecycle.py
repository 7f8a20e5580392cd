"""Opening and closing a client outside ``async with``: hooks, exit stacks, other tasks, misuse.

A service often opens its client in a startup hook and closes it in a shutdown hook. The client
keeps no task group or cancel scope in the caller's task, so these patterns close cleanly: no
task of the client is left running and the caller's own scopes are untouched.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

import aiofutu
from aiofutu import ClientState, SubType, sim

from .conftest import Net

pytestmark = pytest.mark.anyio
#: every test here runs over TCP and over the WebSocket gateway (tests/client/conftest.py)
BOTH_TRANSPORTS = True


def client_tasks() -> list[str]:
    """Names of the tasks a client runs (the host task and the connection's tasks)."""
    return sorted(
        t.name for t in anyio.get_running_tasks() if t.name and t.name.startswith("aiofutu-")
    )


async def test_aenter_then_aclose_leaves_the_callers_scopes_intact(
    net: Net, server: sim.Simulator
) -> None:
    """The pattern of issue 16 item 8: ``__aenter__()`` then ``aclose()``, no ``__aexit__``."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(anyio.sleep, 0.05)  # the caller's own task group, entered before
        with anyio.fail_after(10):
            client = net.connect(server)
            await client.__aenter__()
            assert "HK" in str(await client.get_global_state())
            assert client_tasks()
            await client.aclose()
            assert client.closed
            assert client.state is ClientState.CLOSED
            assert client_tasks() == []  # aclose() returns once every task has ended
            await anyio.lowlevel.checkpoint()  # the caller's scope is not cancelled
    assert client_tasks() == []


async def test_exit_stack_across_startup_and_shutdown_hooks(
    net: Net, server: sim.Simulator
) -> None:
    """An AsyncExitStack held by the app: entered in one hook, closed in another."""

    class App:
        def __init__(self) -> None:
            self.stack = contextlib.AsyncExitStack()
            self.client: aiofutu.Client | None = None

        async def startup(self) -> None:
            self.client = await self.stack.enter_async_context(net.connect(server))
            await self.client.subscribe(["HK.00700"], [SubType.TICKER])

        async def handle(self) -> int:
            assert self.client is not None
            return len(await self.client.get_rt_ticker("HK.00700", 5))

        async def shutdown(self) -> None:
            await self.stack.aclose()

    app = App()
    await app.startup()
    async with anyio.create_task_group() as tg:  # "serving": requests in their own tasks
        results: list[int] = []

        async def request() -> None:
            results.append(await app.handle())

        for _ in range(3):
            tg.start_soon(request)
    assert results == [5, 5, 5]
    await app.shutdown()
    assert app.client is not None and app.client.closed
    assert client_tasks() == []


async def test_lifespan_context_manager(net: Net, server: sim.Simulator) -> None:
    """A lifespan (FastAPI/Starlette style) holding the client in an exit stack."""

    @contextlib.asynccontextmanager
    async def lifespan(state: dict[str, aiofutu.Client]) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            state["client"] = await stack.enter_async_context(net.connect(server))
            yield

    state: dict[str, aiofutu.Client] = {}
    async with lifespan(state):
        assert state["client"].connected
    assert state["client"].closed
    assert client_tasks() == []


async def test_entered_in_one_task_closed_in_another(net: Net, server: sim.Simulator) -> None:
    clients: list[aiofutu.Client] = []
    stacks: list[contextlib.AsyncExitStack] = []

    async def startup() -> None:  # a task that ends right after opening the clients
        clients.append(await net.connect(server).__aenter__())
        stack = contextlib.AsyncExitStack()
        clients.append(await stack.enter_async_context(net.connect(server)))
        stacks.append(stack)

    async with anyio.create_task_group() as tg:
        tg.start_soon(startup)
    for client in clients:
        assert client.connected
        await client.get_global_state()
    async with anyio.create_task_group() as tg:  # shutdown, from yet another task
        tg.start_soon(clients[0].aclose)
        tg.start_soon(stacks[0].aclose)  # __aexit__ in a task other than __aenter__'s
    assert all(c.closed for c in clients)
    assert client_tasks() == []


async def test_aclose_inside_async_with_and_nested_scopes(net: Net, server: sim.Simulator) -> None:
    async with net.connect(server) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.sleep, 0.01)
            with anyio.fail_after(5):
                await client.aclose()
            assert client_tasks() == []
        await anyio.lowlevel.checkpoint()
    assert client.closed


async def test_aclose_from_another_task_ends_the_owners_stream(
    net: Net, server: sim.Simulator
) -> None:
    async with net.connect(server) as client:
        async with client.ticker_stream("HK.00700") as ticks:
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.aclose)
                with anyio.fail_after(5):
                    async for _ in ticks:
                        pass  # ends when the client is closed
    assert client_tasks() == []


async def test_aclose_finishes_when_the_caller_is_cancelled(
    net: Net, server: sim.Simulator
) -> None:
    client = await net.connect(server).__aenter__()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await client.aclose()
    assert client.closed
    assert client_tasks() == []


async def test_entering_twice_is_a_configuration_error(net: Net, server: sim.Simulator) -> None:
    async with net.connect(server) as client:
        with pytest.raises(aiofutu.ConfigurationError, match="already open"):
            await client.__aenter__()
        with pytest.raises(aiofutu.ConfigurationError, match="already open"):
            async with client:
                pass
        assert client.connected  # the failed entries did not close it
        await client.get_global_state()


async def test_a_closed_client_cannot_be_reopened(net: Net, server: sim.Simulator) -> None:
    async with net.connect(server) as client:
        pass
    with pytest.raises(aiofutu.ClientClosed, match="cannot be opened again"):
        await client.__aenter__()
    with pytest.raises(aiofutu.ClientClosed):
        await client.get_global_state()
    await client.aclose()  # still idempotent
    never_opened = net.connect(server)
    await never_opened.aclose()
    with pytest.raises(aiofutu.ClientClosed, match="cannot be opened again"):
        await never_opened.__aenter__()
    assert client_tasks() == []


async def test_use_before_entering_is_a_configuration_error(
    net: Net, server: sim.Simulator
) -> None:
    client = net.connect(server)
    with pytest.raises(aiofutu.ConfigurationError, match="not open yet"):
        await client.get_global_state()
    with pytest.raises(aiofutu.ConfigurationError, match="not open yet"):
        client.ticker_stream("HK.00700")
    async with client:  # and it can still be opened normally
        await client.get_global_state()


async def test_failed_connect_leaves_no_task(net: Net) -> None:
    with anyio.fail_after(10):
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        await listener.aclose()  # nothing listens there now
        client = net.connect(port, connect_timeout=2)
        with pytest.raises(aiofutu.ConnectError):
            await client.__aenter__()
        assert client.closed
        assert client_tasks() == []
        with pytest.raises(aiofutu.ClientClosed):
            await client.__aenter__()


async def test_cancelled_while_connecting_leaves_no_task(net: Net) -> None:
    async def silent(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await anyio.sleep(10)  # accepts, never answers InitConnect

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, silent)
        client = net.connect(port, connect_timeout=5)
        with anyio.move_on_after(0.3) as scope:
            await client.__aenter__()
        assert scope.cancelled_caught
        assert client.closed
        assert client_tasks() == []
        tg.cancel_scope.cancel()


async def test_a_bug_in_a_background_task_closes_the_client(
    net: Net, server: sim.Simulator
) -> None:
    """It is logged and ends the client's streams with ConnectionLost; the caller goes on."""

    async def buggy() -> None:
        raise RuntimeError("a bug")

    async with net.connect(server) as client:
        async with client.ticker_stream("HK.00700", is_first_push=False) as ticks:
            assert client._services is not None
            client._services.start_soon(buggy)
            with anyio.fail_after(5), pytest.raises(aiofutu.ConnectionLost, match="a bug"):
                async for _ in ticks:
                    pass
        assert client.state is ClientState.CLOSED
        with pytest.raises(aiofutu.ClientClosed):
            await client.get_global_state()
        await anyio.lowlevel.checkpoint()  # the caller's scope is not cancelled
    assert client_tasks() == []


async def test_aiohttp_startup_and_cleanup_hooks(
    net: Net, server: sim.Simulator, anyio_backend: str
) -> None:
    """A real aiohttp app: the client opened in on_startup, closed in on_cleanup."""
    if anyio_backend != "asyncio":
        pytest.skip("aiohttp runs on asyncio only")
    aiohttp = pytest.importorskip("aiohttp")
    from aiohttp import web

    key = web.AppKey("client", aiofutu.Client)

    async def on_startup(app: web.Application) -> None:
        app[key] = await net.connect(server).__aenter__()

    async def on_cleanup(app: web.Application) -> None:
        await app[key].aclose()

    async def state(request: web.Request) -> web.Response:
        return web.json_response({"state": request.app[key].state.value})

    app = web.Application()
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_get("/state", state)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/state") as resp:
            assert await resp.json() == {"state": "ready"}
    await runner.cleanup()
    assert app[key].closed
    assert client_tasks() == []
