"""``Recorder.awrite``: the Parquet write runs in a worker thread, not on the event loop."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

import aiofutu
import aiofutu.record
from aiofutu import sim
from aiofutu.record import Recorder, read_recording

pytestmark = pytest.mark.anyio

HK = "HK.00700"


async def test_awrite_writes_in_a_worker_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_thread = threading.get_ident()
    writers: list[int] = []
    real = aiofutu.record.write_recording

    def spy(ticks: Any, path: Any) -> int:
        writers.append(threading.get_ident())
        return real(ticks, path)

    monkeypatch.setattr(aiofutu.record, "write_recording", spy)
    path = tmp_path / "ticks.parquet"
    async with sim.serve(tick_rate=0, burst=40) as server:
        recorder = Recorder([HK], limit=40)
        async with aiofutu.connect(server.host, server.port) as client:
            with anyio.fail_after(10):
                ticks = await recorder.run(client)
        assert await recorder.awrite(path) == 40
    assert writers and loop_thread not in writers
    assert await anyio.to_thread.run_sync(read_recording, path) == ticks
    assert [t.sequence for t in ticks] == [t.sequence for t in server.market.history(HK)[-40:]]
