"""``aiofutu.bus.ticker_frames``: polars DataFrames of bus ticks, as ``client.ticker_frames``.

The frames have the direct stream's schema (the SDK's columns, then ``push_data_type``), are
cut the same way (at most ``max_rows``, no later than ``max_latency`` seconds after the first
tick taken for them, never across a hole of the tape), and come from a :class:`BusStream`, so
gaps, late fills, overflow policies and durable resume points are those of ``subscribe``: a
durable consumer is done with a frame's ticks when it asks for the next frame.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, SlowConsumer
from ..frames import to_polars
from ._acks import settle

if TYPE_CHECKING:
    from types import TracebackType

    import polars as pl

    from ..models import Ticker
    from ._consumer import BusStream

__all__ = ("BusFrameStream",)


class BusFrameStream:
    """``async for df in frames``: polars DataFrames of ticks from the bus.

    Counters and ``gaps``, ``late_fills``, ``commit()`` are those of the underlying
    :class:`BusStream` (``frames.ticks``).
    """

    def __init__(self, ticks: BusStream, *, max_rows: int, max_latency: float) -> None:
        if type(max_rows) is not int or max_rows < 1:
            raise ConfigurationError(f"max_rows must be a positive int, got {max_rows!r}")
        if not isinstance(max_latency, (int, float)) or not max_latency >= 0:
            raise ConfigurationError(f"max_latency must be >= 0 seconds, got {max_latency!r}")
        to_polars([])  # polars is there (MissingDependency naming the extra otherwise)
        self.ticks = ticks
        self.max_rows = max_rows
        self.max_latency = float(max_latency)
        self._hole: SlowConsumer | None = None

    def __getattr__(self, name: str) -> Any:
        if name in ("received", "dropped", "malformed", "duplicates", "late_fills", "gaps"):
            return getattr(self.ticks, name)
        raise AttributeError(name)

    @property
    def pending(self) -> int:
        """Ticks (rows) buffered and not yet in a frame."""
        return self.ticks.pending

    async def start(self) -> None:
        """Connect and create the consumers (idempotent)."""
        await self.ticks.start()

    async def commit(self, timeout: float = 5.0) -> bool:
        """Durable: done with every frame handed out so far (see :meth:`BusStream.commit`)."""
        return await self.ticks.commit(timeout)

    async def aclose(self, *, done: bool = True) -> None:
        """Stop the consumers (see :meth:`BusStream.aclose`)."""
        await self.ticks.aclose(done=done)

    async def __aenter__(self) -> BusFrameStream:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose(done=exc_type is None or exc_type is GeneratorExit)

    def __aiter__(self) -> BusFrameStream:
        return self

    async def __anext__(self) -> pl.DataFrame:
        hole, self._hole = self._hole, None
        if hole is not None:  # the frame before it went out first
            raise hole
        ticks = self.ticks
        settle(ticks._in_hand)  # asking for more: done with the last frame
        rows: list[Ticker] = []
        first = 0.0
        while True:
            try:
                while len(rows) < self.max_rows:
                    tick = ticks._pop()
                    if tick is None:
                        break
                    if not rows:
                        first = time.monotonic()
                    rows.append(tick)
            except SlowConsumer as exc:  # a frame never spans a hole
                if not rows:
                    raise
                self._hole = exc
                return _frame(rows)
            if len(rows) >= self.max_rows:
                return _frame(rows)
            if rows:
                left = first + self.max_latency - time.monotonic()
                if left <= 0 or ticks.closed:
                    return _frame(rows)
                await ticks._wait_more(left)
            elif ticks.closed:
                raise StopAsyncIteration
            else:
                await ticks._wait_more()


def _frame(rows: list[Ticker]) -> pl.DataFrame:
    return to_polars(rows, push_data_type=True)
