"""``aiofutu record --kind ...``: the rows of a state or series stream, written as they come.

One loop for every kind and source (OpenD or the bus): each item becomes a row, and the rows
go to :class:`aiofutu.record.RowSink` at most ``flush_interval`` seconds behind (or every
``FLUSH_ROWS``), so a kill, a crash or a full disk late in a long session keeps what was
recorded, and memory holds one batch, not the session. The file is complete when the loop
ends, is cancelled (Ctrl-C, ``--duration``) or fails.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from ..record import RowSink

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

__all__ = ("FLUSH_ROWS", "record_rows")

#: rows buffered at most before they are written, however fast they come
FLUSH_ROWS = 10_000


async def record_rows(
    items: AsyncIterator[Any],
    to_row: Callable[[Any], dict[str, Any]],
    out: str,
    *,
    limit: int | None = None,
    flush_interval: float = 1.0,
    written: Callable[[int], None] | None = None,
) -> int:
    """Take ``items`` until ``limit`` (or the end, or cancellation), writing ``to_row(item)``
    to ``out``; the rows written. ``written(n)`` is told the count once the file is complete,
    also when cancelled."""
    sink = RowSink(out)
    await anyio.to_thread.run_sync(sink.check)
    await anyio.to_thread.run_sync(sink.open)
    pending: list[dict[str, Any]] = []
    taken = 0
    cap = math.inf if limit is None else limit
    try:
        due = math.inf
        while taken < cap:
            with anyio.move_on_after(max(due - time.monotonic(), 0)):  # idle: flush when due
                try:
                    item = await anext(items)
                except StopAsyncIteration:
                    break
                pending.append(to_row(item))
                taken += 1
                if due == math.inf:
                    due = time.monotonic() + flush_interval
            if pending and (time.monotonic() >= due or len(pending) >= FLUSH_ROWS):
                batch, pending = pending, []
                await anyio.to_thread.run_sync(sink.append, batch)
                due = math.inf
    finally:
        with anyio.CancelScope(shield=True):  # Ctrl-C, --duration: finish the file first
            rows = await anyio.to_thread.run_sync(sink.close, pending)
            if written is not None:
                written(rows)
    return rows
