"""Soak: minutes of pushes with the connection cut every 30 s (``make soak``, not ``make test``).

Reports ticks lost (must be 0 while each outage stays inside OpenD's 1000-tick window),
duplicates, reconnect times (median, max) and memory over time (must stay flat).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

import anyio
import pytest

import aiofutu
from aiofutu import ClientState, ReconnectPolicy, sim

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

LOW = 0xFFFFFFFF
CODES = ("HK.00700", "HK.09988")


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _save(report: dict[str, object]) -> None:
    out = os.environ.get("AIOFUTU_SOAK_REPORT")
    if out:
        Path(out).write_text(json.dumps(report, indent=2))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_soak_with_cuts_every_30s() -> None:
    duration = float(os.environ.get("AIOFUTU_SOAK_SECONDS", "600"))
    cut_every = float(os.environ.get("AIOFUTU_SOAK_CUT_EVERY", "30"))
    policy = ReconnectPolicy(initial_delay=0.2, max_delay=1.0, jitter=0.1)
    last: dict[str, int] = {}
    received = lost = duplicates = 0
    reconnect_times: list[float] = []
    memory: list[tuple[float, float]] = []
    started = time.monotonic()
    async with sim.serve(port=0, tick_rate=200, codes=CODES, seed=3) as server:
        async with aiofutu.connect("127.0.0.1", server.port, reconnect=policy, timeout=5) as client:
            async with (
                client.ticker_stream(*CODES, buffer=100_000, is_first_push=False) as stream,
                anyio.create_task_group() as tg,
            ):

                async def cutter() -> None:
                    watch = client.state_changes()
                    await watch.__anext__()
                    while True:
                        await anyio.sleep(cut_every)
                        cut = time.monotonic()
                        await server.drop_connections()
                        async for change in watch:
                            if change.state is ClientState.READY:
                                reconnect_times.append(time.monotonic() - cut)
                                break

                async def sampler() -> None:
                    while True:
                        memory.append((time.monotonic() - started, _rss_mib()))
                        await anyio.sleep(5)

                tg.start_soon(cutter)
                tg.start_soon(sampler)
                with anyio.move_on_after(duration):
                    async for tick in stream:
                        received += 1
                        counter = tick.sequence & LOW
                        prev = last.get(tick.code)
                        if prev is not None:
                            if counter <= prev:
                                duplicates += 1
                                continue
                            lost += counter - prev - 1
                        last[tick.code] = counter
                tg.cancel_scope.cancel()
            gaps = len(stream.gaps)
    early = [m for t, m in memory if t < min(60.0, duration / 3)] or [memory[0][1]]
    late = [m for t, m in memory if t > duration - min(60.0, duration / 3)] or [memory[-1][1]]
    report = {
        "duration_s": round(time.monotonic() - started, 1),
        "ticks_received": received,
        "ticks_lost": lost,
        "duplicates": duplicates,
        "gaps_reported": gaps,
        "cuts": len(reconnect_times),
        "reconnect_s_median": round(statistics.median(reconnect_times), 3)
        if reconnect_times
        else None,
        "reconnect_s_max": round(max(reconnect_times), 3) if reconnect_times else None,
        "rss_mib_early": round(max(early), 1),
        "rss_mib_late": round(max(late), 1),
        "rss_mib_peak": round(max(m for _, m in memory), 1),
    }
    print("\nSOAK REPORT", json.dumps(report, indent=2))
    _save(report)
    assert report["cuts"] >= max(1, int(duration // cut_every) - 1)
    assert lost == 0
    assert duplicates == 0
    assert gaps == 0
    assert received > duration * 200  # both codes flowed throughout
    assert report["rss_mib_late"] - report["rss_mib_early"] < 25  # flat, not growing
