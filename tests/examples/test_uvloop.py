"""The client under uvloop (anyio's ``use_uvloop`` asyncio option), against the simulator."""

from __future__ import annotations

import asyncio
import sys

import anyio
import pytest

import aiofutu
from aiofutu import sim

pytest.importorskip("uvloop", reason="uvloop is not available on this platform")
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="no uvloop on Windows")

HK = "HK.00700"
LOW32 = 0xFFFFFFFF


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, bool]]:
    return ("asyncio", {"use_uvloop": True})


def _consecutive(ticks: list[aiofutu.Ticker]) -> bool:
    counters = [t.sequence & LOW32 for t in ticks]
    return counters == list(range(counters[0], counters[0] + len(counters)))


async def test_runs_on_uvloop() -> None:
    assert type(asyncio.get_running_loop()).__module__.startswith("uvloop")
    async with (
        sim.serve(port=0, tick_rate=0, codes=(HK,), unsub_min_age=0) as server,
        aiofutu.connect(
            "127.0.0.1",
            server.port,
            timeout=5,
            reconnect=aiofutu.ReconnectPolicy(initial_delay=0.05, jitter=0),
        ) as client,
    ):
        await client.subscribe([HK], [aiofutu.SubType.TICKER])
        await server.burst(HK, n=1200)
        recent = await client.get_rt_ticker(HK, 1000)
        assert len(recent) == 1000 and _consecutive(recent)

        frame = await client.get_rt_ticker_frame(HK, 1000)
        assert frame.columns == list(aiofutu.TICKER_COLUMNS)
        assert frame["sequence"].to_list() == [t.sequence for t in recent]

        async with client.ticker_stream(HK, is_first_push=False) as ticks:
            await server.burst(HK, n=1000)
            got: list[aiofutu.Ticker] = []
            with anyio.fail_after(10):
                async for tick in ticks:
                    got.append(tick)
                    if len(got) == 1000:
                        break
            assert _consecutive(got) and got[0].sequence > recent[-1].sequence

            # a drop and a reconnect, still on uvloop: the stream goes on, gapless
            await server.drop_connections()
            with anyio.fail_after(10):
                while client.reconnects == 0:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
                await client.wait_ready(timeout=10)
            await server.burst(HK, n=100)
            more: list[aiofutu.Ticker] = []
            with anyio.fail_after(10):
                async for tick in ticks:
                    more.append(tick)
                    if len(more) == 100:
                        break
            assert _consecutive(got + more) and ticks.gaps == []
