"""Nothing in the library blocks the event loop.

Two detectors watch a full client session (connect, subscribe, ``get_rt_ticker(1000)`` and its
frame, a 20 000-tick stream burst, a frame stream, a dropped link and the reconnect):

* blocking calls (asyncio): ``blockbuster`` makes any blocking call (file or blocking-socket
  I/O, ``time.sleep``, a contended lock, ...) raise ``BlockingError`` when an ``aiofutu`` frame
  is on the stack of a thread that runs an event loop. The simulator is excluded.
* long steps (asyncio and trio): every callback or task step of the loop is timed (a wrapper of
  asyncio's ``Handle._run``; a trio instrument), and no step may use more than ``STEP_LIMIT``
  seconds of the loop thread's CPU. CPU time, not wall time: the simulator runs in a thread of
  the same process, and while it holds the GIL (serializing a 20 000-tick burst in C, say) a
  short client step can last far longer on the clock without the client doing any more work;
  a busy machine stretches wall time the same way. Sleeping and other blocking calls use no
  CPU, and blockbuster catches those.

The simulator runs in another thread with its own event loop, so that its own work (e.g. encoding
a burst up front) is not measured: only the client's is. Each detector also has a positive
control, to prove it is live.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import pytest
from blockbuster import blockbuster_ctx

import aiofutu
from aiofutu.testing import BackgroundSimulator, background_simulator

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = pytest.mark.anyio

HK = "HK.00700"
LOW32 = 0xFFFFFFFF
#: The longest step seen in this scenario is ~25 ms on a 2-core machine (decoding one ~256 KiB
#: read of a burst). Doing a whole 20k-tick burst in one step would take ~300 ms; a blocking call
#: of any length is caught by blockbuster instead.
STEP_LIMIT = 0.15


@pytest.fixture(params=[pytest.param(("asyncio", {"debug": True}), id="asyncio"), "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return request.param


@pytest.fixture(scope="module")
def remote_sim() -> Iterator[BackgroundSimulator]:
    """A simulator on its own thread and event loop."""
    with background_simulator(tick_rate=0, codes=(HK,), unsub_min_age=0) as opend:
        yield opend


def _backend_name(anyio_backend: Any) -> str:
    return anyio_backend if isinstance(anyio_backend, str) else anyio_backend[0]


@contextmanager
def long_steps(backend: str, limit: float = STEP_LIMIT) -> Iterator[list[str]]:
    """Collect a description of every event-loop step longer than ``limit`` seconds."""
    found: list[str] = []
    if backend == "asyncio":
        loop = asyncio.get_running_loop()
        assert loop.get_debug(), "asyncio debug mode is off"
        run = asyncio.events.Handle._run

        def timed_run(handle: asyncio.events.Handle) -> None:
            if handle._loop is not loop:  # type: ignore[attr-defined]  # the simulator's loop
                run(handle)
                return
            started = time.thread_time()
            run(handle)
            took = time.thread_time() - started
            if took > limit:
                task = getattr(handle._callback, "__self__", None)
                found.append(f"Executing {task or handle!r} took {took:.3f} seconds of CPU")

        asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]
        try:
            yield found
        finally:
            asyncio.events.Handle._run = run  # type: ignore[method-assign]
    else:
        import trio

        class Steps(trio.abc.Instrument):
            def __init__(self) -> None:
                self.started = time.thread_time()

            def before_task_step(self, task: trio.lowlevel.Task) -> None:
                self.started = time.thread_time()

            def after_task_step(self, task: trio.lowlevel.Task) -> None:
                took = time.thread_time() - self.started
                if took > limit:
                    found.append(f"task {task.name} step took {took:.3f} seconds")

        instrument = Steps()
        trio.lowlevel.add_instrument(instrument)
        try:
            yield found
        finally:
            trio.lowlevel.remove_instrument(instrument)


@contextmanager
def blocking_calls(backend: str) -> Iterator[None]:
    """Make blocking calls from aiofutu code raise ``BlockingError`` (asyncio only)."""
    if backend != "asyncio":
        yield
        return
    with blockbuster_ctx("aiofutu", excluded_modules=["aiofutu.sim", "aiofutu.testing"]):
        yield


def _consecutive(ticks: list[aiofutu.Ticker]) -> bool:
    counters = [t.sequence & LOW32 for t in ticks]
    return counters == list(range(counters[0], counters[0] + len(counters)))


async def _on_sim(opend: BackgroundSimulator, func: Callable[..., Any], *args: Any) -> Any:
    """Run a simulator method on its thread, without blocking this loop."""
    return await anyio.to_thread.run_sync(opend.call, func, *args)


async def _take(stream: aiofutu.TickerStream, n: int) -> list[aiofutu.Ticker]:
    got: list[aiofutu.Ticker] = []
    with anyio.fail_after(20):
        async for tick in stream:
            got.append(tick)
            if len(got) == n:
                break
    return got


async def test_client_never_blocks_the_loop(
    anyio_backend: Any, remote_sim: BackgroundSimulator
) -> None:
    opend, server = remote_sim, remote_sim.server
    backend = _backend_name(anyio_backend)
    import polars  # noqa: F401  # imported once per process by the first frame: not our concern

    policy = aiofutu.ReconnectPolicy(initial_delay=0.05, max_delay=0.2, jitter=0.0)
    # Late in the suite the process holds everything earlier tests left on the heap, and a full
    # collection triggered by this test's allocations scans all of it inside one step. That
    # measures the test runner's heap, not the library: freeze it, as a service does after
    # start-up (gc.freeze), so only this session's own objects are collected.
    gc.collect()
    gc.freeze()
    with blocking_calls(backend), long_steps(backend) as slow:
        async with aiofutu.connect(opend.host, opend.port, timeout=10, reconnect=policy) as client:
            await client.subscribe([HK], [aiofutu.SubType.TICKER])
            await _on_sim(opend, server.burst, HK, 1000)
            recent = await client.get_rt_ticker(HK, 1000)
            assert len(recent) == 1000 and _consecutive(recent)
            frame = await client.get_rt_ticker_frame(HK, 1000)
            assert frame.height == 1000
            await client.query_subscription()
            await client.get_global_state()

            async with client.ticker_stream(HK, buffer=50_000, is_first_push=False) as ticks:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_on_sim, opend, server.burst, HK, 20_000)
                    burst = await _take(ticks, 20_000)
                assert _consecutive(burst) and burst[0].sequence > recent[-1].sequence

                await _on_sim(opend, server.drop_connections)
                with anyio.fail_after(10):
                    while client.reconnects == 0:  # noqa: ASYNC110
                        await anyio.sleep(0.01)
                    await client.wait_ready(timeout=10)
                await _on_sim(opend, server.burst, HK, 500)
                after = await _take(ticks, 500)
                assert _consecutive(burst + after) and ticks.gaps == []

            async with client.ticker_frames(HK, max_rows=2_000, max_latency=0.05) as frames:
                await _on_sim(opend, server.burst, HK, 5_000)
                rows = 0
                with anyio.fail_after(10):
                    async for df in frames:
                        rows += df.height
                        if rows >= 5_000:
                            break
                assert rows == 5_000
    gc.unfreeze()
    assert slow == [], f"event-loop steps longer than {STEP_LIMIT}s: {slow}"


async def test_detectors_are_live(
    anyio_backend: Any,
    remote_sim: BackgroundSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Positive controls: a user callback run by the library (``on_gap``, called from the
    client's reader) that sleeps, then one that burns CPU, must both be caught."""
    opend, server = remote_sim, remote_sim.server
    backend = _backend_name(anyio_backend)
    behaviour: dict[str, Callable[[], None]] = {}

    def on_gap(gap: aiofutu.Gap) -> None:
        behaviour["gap"]()

    def busy() -> None:  # CPU, not wall time: the detector measures the loop thread's CPU
        end = time.thread_time() + 2 * STEP_LIMIT
        while time.thread_time() < end:
            pass

    async def gap_then_tick(stream: aiofutu.TickerStream) -> None:
        await _on_sim(opend, server.burst, HK, 1)  # a first tick: the route knows a sequence
        await _take(stream, 1)
        await _on_sim(opend, server.skip_ticks, HK, 3)  # 3 trades never pushed: a gap
        await _on_sim(opend, server.burst, HK, 1)
        await _take(stream, 1)

    async with aiofutu.connect(opend.host, opend.port, timeout=10) as client:
        async with client.ticker_stream(HK, on_gap=on_gap, is_first_push=False) as ticks:
            if backend == "asyncio":
                behaviour["gap"] = lambda: time.sleep(0.001)
                with caplog.at_level(logging.ERROR, "aiofutu"), blocking_calls(backend):
                    await gap_then_tick(ticks)
                failed = [r for r in caplog.records if "on_gap callback failed" in r.getMessage()]
                assert failed and failed[0].exc_info is not None
                assert type(failed[0].exc_info[1]).__name__ == "BlockingError"

            behaviour["gap"] = busy
            with long_steps(backend) as slow:
                await gap_then_tick(ticks)
            assert len(slow) == 1, slow


@pytest.mark.parametrize("anyio_backend", [("asyncio", {"debug": True})], ids=["asyncio"])
async def test_rsa_key_file_is_not_read_on_the_loop(anyio_backend: Any, tmp_path: Any) -> None:
    """``connect(..., rsa_private_key=PATH)`` runs inside async code: the key file must be read
    off the loop (e.g. in a worker thread when the client is entered)."""
    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    path = tmp_path / "opend_key.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    with blocking_calls("asyncio"):
        client = aiofutu.connect("127.0.0.1", 1, rsa_private_key=path)  # nothing listens on 1
        with pytest.raises(aiofutu.ConnectError):
            async with client:
                pass
