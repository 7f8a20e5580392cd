"""Push stream shapes: bounded, per-consumer buffers that a kind's router fills.

A router (``aiofutu.quotes._ticker_router.TickerRouter`` for tickers) runs in the reader and
appends to each stream's buffer; it never awaits and never runs user code, and consumers are
woken once per read chunk, not once per item. A stream that overflows records where its items
were lost, so that its consumer is told at that point of the tape (see :class:`TickerStream`).
A stream asks only one thing of its client, through the narrow
:class:`~aiofutu._routing.Attacher`: to be routed (subscribing what is missing) and unrouted.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections import deque
from typing import TYPE_CHECKING, Generic, Literal, NamedTuple, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread

from ._routing import Sink
from .errors import ClientClosed, ConfigurationError, ConnectionLost, FutuError, SlowConsumer
from .frames import ColumnBuffer, _polars

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover
    from typing_extensions import Self

if TYPE_CHECKING:
    from collections.abc import Callable

    import polars as pl

    from ._columns import TickColumns
    from ._routing import Attacher
    from .models import Ticker

__all__ = ("Gap", "Overflow", "TickerFrameStream", "TickerStream")

logger = logging.getLogger("aiofutu.streams")

#: An ``async for`` working through buffered ticks yields to the event loop once it has run for
#: ``_SLICE`` seconds without waiting (the clock is read every ``_STREAK`` ticks). A time slice,
#: not a tick count: yielding every N ticks lets the reader in with small reads, whose per-read
#: costs made a 10-tick-per-push burst ~40% slower, while a fast consumer needs no turn that often.
_STREAK = 32
_SLICE = 0.002
_clock = time.perf_counter

Overflow = Literal["drop_oldest", "raise", "block"]
_I = TypeVar("_I")
_OVERFLOWS = ("drop_oldest", "raise", "block")


class Gap(NamedTuple):
    """A hole in the tape of ``code``: ticks between sequences ``after`` and ``before`` are lost.

    ``missing`` is their number when the sequence carries a trade counter (HK), else ``None``
    (known to be lost, count unknown: e.g. more than OpenD's 1000-tick window after an outage).

    ``reset`` marks a discontinuity rather than a hole: the trade counter went backwards (an
    OpenD restart, a new trading day, another gateway), so ``before`` starts a new tape and
    nothing is known about what lies between (``missing`` is ``None``). How a reset is told
    apart from re-sent ticks: docs/streaming.md, "Gaps and resets of the tape".
    """

    code: str
    after: int
    before: int
    missing: int | None
    reset: bool = False


def _check_buffer(buffer: object) -> int:
    if type(buffer) is not int or buffer < 1:
        raise ConfigurationError(f"buffer must be a positive int, got {buffer!r}")
    return buffer


def _check_overflow(overflow: object) -> Overflow:
    if overflow not in _OVERFLOWS:
        raise ConfigurationError(f"overflow must be one of {_OVERFLOWS}, got {overflow!r}")
    return overflow  # type: ignore[return-value]


async def _import_polars() -> None:
    """Import polars in a worker thread, once, so its ~0.1 s import never stalls the loop.

    Raises :class:`~aiofutu.MissingDependency` when polars is not installed.
    """
    if "polars" not in sys.modules:
        await anyio.to_thread.run_sync(_polars)
    else:
        _polars()


#: the interface a router sees (kept under its old name)
_Sink = Sink


class _Bounded(Sink):
    """Buffer accounting and consumer wake-up shared by both stream kinds."""

    def __init__(
        self,
        attacher: Attacher,
        codes: tuple[str, ...],
        buffer: int,
        overflow: Overflow,
        on_gap: Callable[[Gap], None] | None,
    ) -> None:
        self._attacher = attacher
        self.codes = codes
        self.buffer = buffer
        self.overflow: Overflow = overflow
        self.on_gap = on_gap
        self.received = 0
        self.dropped = 0
        self.gaps: list[Gap] = []
        self._warned = False
        self._wake: anyio.Event | None = None
        self._space: anyio.Event | None = None
        self._ended = False
        self._end_error: FutuError | None = None
        self._attached = False
        self._closed = False
        self.staged = []
        #: ask OpenD to re-send the latest tick when this stream's subscription is made
        self.first_push = True

    def _notify(self) -> None:
        wake = self._wake
        if wake is not None:
            self._wake = None
            wake.set()

    def _overflowed(self, lost: int) -> None:
        self.dropped += lost
        if not self._warned:
            self._warned = True
            logger.warning(
                "stream on %s: consumer is behind, %d tick(s) dropped (buffer=%d, overflow=%s)",
                ",".join(self.codes),
                lost,
                self.buffer,
                self.overflow,
            )

    def _put_gap(self, gap: Gap) -> None:
        self.gaps.append(gap)
        if self.on_gap is not None:
            try:
                self.on_gap(gap)
            except Exception:
                logger.exception("on_gap callback failed")

    def _end(self, error: FutuError | None) -> None:
        if not self._ended:
            self._ended = True
            self._end_error = error
            self._notify()
            if self._space is not None:
                self._space.set()

    async def _wait_space(self) -> None:
        """For overflow="block": the reader waits here until the consumer drains."""
        while self._is_full() and not self._ended and not self._closed:
            self._space = anyio.Event()
            await self._space.wait()

    def _released(self) -> None:
        space = self._space
        if space is not None and not self._is_full():
            self._space = None
            space.set()

    async def _wait(self, deadline: float = math.inf) -> None:
        self._wake = event = anyio.Event()
        if deadline == math.inf:
            await event.wait()
        else:
            with anyio.move_on_after(max(deadline - time.monotonic(), 0)):
                await event.wait()

    def _raise_end(self) -> None:
        error = self._end_error
        if error is None or isinstance(error, ClientClosed):
            raise StopAsyncIteration
        if isinstance(error, ConnectionLost):
            raise ConnectionLost(str(error)) from error
        raise error

    def _hole(self, lost: int) -> None:
        """The consumer reached a hole of ``lost`` ticks (``overflow="raise"``): tell it."""
        self._warned = False
        raise SlowConsumer(lost, codes=self.codes)

    async def start(self) -> None:
        """Subscribe what is missing and attach to the router (idempotent)."""
        if self._closed:
            raise ClientClosed("the stream is closed")
        if not self._attached:
            if not self.wants_models:
                await _import_polars()
            await self._attacher.attach(self)
            self._attached = True

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __aiter__(self) -> Self:
        return self

    async def aclose(self) -> None:
        """Detach from the client. The OpenD subscription stays (see ``Client.ticker_stream``)."""
        if not self._closed:
            self._closed = True
            if self._attached:
                self._attacher.detach(self)
            self._end(None)


class _ItemStream(_Bounded, Generic[_I]):
    """``async for item in stream`` over pushed items (models), with bounded buffering.

    The buffer and overflow machinery of :class:`TickerStream`, for any item type: the series
    streams of :mod:`aiofutu.quotes.series_stream` use it too.
    """

    wants_models = True

    def __init__(
        self,
        attacher: Attacher,
        codes: tuple[str, ...],
        *,
        buffer: int = 10_000,
        overflow: Overflow = "raise",
        on_gap: Callable[[Gap], None] | None = None,
    ) -> None:
        super().__init__(attacher, codes, _check_buffer(buffer), _check_overflow(overflow), on_gap)
        #: the segment being consumed
        self._buf: deque[_I] = deque()
        #: overflow="raise" only: the segments after a hole, each with the ticks lost before it
        self._later: deque[tuple[int, deque[_I]]] = deque()
        self._queued = 0  # ticks in ``_later``
        #: ticks handed out since the clock was last read, and when the consumer last waited
        self._streak = 0
        self._since = _clock()

    @property
    def pending(self) -> int:
        """Ticks buffered and not yet consumed."""
        return len(self._buf) + self._queued

    def _is_full(self) -> bool:
        return len(self._buf) + self._queued >= self.buffer

    def _put_models(self, ticks: list[_I]) -> None:
        buf = self._buf
        n = len(ticks)
        self.received += n
        if not self._later and (len(buf) + n <= self.buffer or self.overflow == "block"):
            buf.extend(ticks)
        elif self.overflow == "drop_oldest":  # the loss is always right before the next tick
            buf.extend(ticks)
            excess = len(buf) - self.buffer
            for _ in range(excess):
                buf.popleft()
            self._overflowed(excess)
        else:
            self._put_after_hole(ticks)
        wake = self._wake
        if wake is not None:
            self._wake = None
            wake.set()

    def _put_after_hole(self, ticks: list[_I]) -> None:
        """overflow="raise": keep what fits; the rest is a hole, and later ticks go after it."""
        later = self._later
        n = len(ticks)
        room = self.buffer - len(self._buf) - self._queued
        if room > 0:
            kept = ticks if room >= n else ticks[:room]
            if later:
                later[-1][1].extend(kept)
                self._queued += len(kept)
            else:
                self._buf.extend(kept)
        lost = n - max(room, 0)
        if lost > 0:
            self._overflowed(lost)
            if later and not later[-1][1]:  # nothing arrived since the last hole: the same one
                later[-1] = (later[-1][0] + lost, later[-1][1])
            else:
                later.append((lost, deque()))

    def _put_raw(self, code: str, cols: TickColumns) -> None:
        raise AssertionError(f"{type(self).__name__} takes models")  # pragma: no cover

    def _next_segment(self) -> deque[_I]:
        """Step over the hole after the current segment: raise for it, then go on after it."""
        lost, segment = self._later.popleft()
        self._queued -= len(segment)
        self._buf = segment
        self._hole(lost)
        return segment  # pragma: no cover (a hole always lost something)

    async def __anext__(self) -> _I:
        buf = self._buf
        while True:
            if buf:
                self._streak += 1
                if self._streak >= _STREAK:
                    self._streak = 0
                    if _clock() - self._since >= _SLICE:
                        # A consumer working through a large backlog would otherwise run
                        # without ever yielding, starving every other task on the loop; the
                        # checkpoint comes before the tick is taken, so a cancellation here
                        # loses nothing.
                        await anyio.lowlevel.checkpoint()
                        self._since = _clock()
                        continue
                tick = buf.popleft()
                if self._space is not None:
                    self._released()
                return tick
            if self._later:
                buf = self._next_segment()
                continue
            if self._ended or self._closed:
                self._raise_end()
            if not self._attached:
                await self.start()
                continue
            self._warned = False  # caught up: the next overflow is a new episode
            self._streak = 0
            await self._wait()
            self._since = _clock()

    def drain(self) -> list[_I]:
        """Everything buffered now up to the next hole, without waiting.

        Raises like iteration: :class:`SlowConsumer` when a hole comes first (the next call
        returns what follows it), and the end of the stream once nothing is left.
        """
        if not self._buf and self._later:
            self._next_segment()
        out = list(self._buf)
        self._buf.clear()
        if self._space is not None:
            self._released()
        if not out and (self._ended or self._closed):
            self._raise_end()
        return out


class TickerStream(_ItemStream["Ticker"]):
    """``async for tick in stream`` over pushed ticks of one or more codes, as :class:`Ticker`.

    Statistics: ``received`` (ticks that reached the stream, kept or not), ``dropped`` (lost to
    overflow), ``pending`` (buffered, not yet consumed) and ``gaps`` (holes and resets of the
    tape seen on the wire). ``received == consumed + pending + dropped`` at all times.

    With ``overflow="raise"`` the ticks lost to one overflow leave a hole in the buffer: the
    ticks before it are delivered, then the next iteration raises :class:`SlowConsumer` with the
    number lost, and only then come the ticks that arrived after it. The buffer is a chain of
    segments, one per hole, so the per-tick path never checks for holes: only the step from one
    segment to the next does.
    """


class TickerFrameStream(_Bounded):
    """``async for df in frames``: polars DataFrames of pushed ticks, no model per tick.

    Each frame holds at most ``max_rows`` ticks and is yielded no later than ``max_latency``
    seconds after its first tick arrived. ``buffer`` bounds the rows held for the consumer.
    Overflow works as in :class:`TickerStream`, counted in rows: a frame never spans a hole.
    """

    wants_models = False

    def __init__(
        self,
        attacher: Attacher,
        codes: tuple[str, ...],
        *,
        max_rows: int = 10_000,
        max_latency: float = 0.1,
        buffer: int = 1_000_000,
        overflow: Overflow = "raise",
        on_gap: Callable[[Gap], None] | None = None,
    ) -> None:
        if type(max_rows) is not int or max_rows < 1:
            raise ConfigurationError(f"max_rows must be a positive int, got {max_rows!r}")
        if not isinstance(max_latency, (int, float)) or not max_latency >= 0:
            raise ConfigurationError(f"max_latency must be >= 0 seconds, got {max_latency!r}")
        super().__init__(attacher, codes, _check_buffer(buffer), _check_overflow(overflow), on_gap)
        self.max_rows = max_rows
        self.max_latency = float(max_latency)
        # decoded pushes, not yet cut into frames: (code, columns, arrival time)
        self._msgs: deque[tuple[str, TickColumns, float]] = deque()
        #: overflow="raise" only: the segments after a hole, each with the rows lost before it
        self._later: deque[tuple[int, deque[tuple[str, TickColumns, float]]]] = deque()
        self._rows = 0  # in ``_msgs`` and ``_later``

    @property
    def pending(self) -> int:
        """Ticks (rows) buffered and not yet consumed."""
        return self._rows

    def _is_full(self) -> bool:
        return self._rows >= self.buffer

    def _put_models(self, ticks: list[Ticker]) -> None:
        raise AssertionError("TickerFrameStream takes raw pushes")  # pragma: no cover

    def _put_raw(self, code: str, cols: TickColumns) -> None:
        n = cols.n
        self.received += n
        if self._later or (self._rows + n > self.buffer and self.overflow != "block"):
            if self.overflow == "raise":
                self._put_after_hole(code, cols)
                return
            cols = self._drop_oldest(cols)
            n = cols.n
        self._msgs.append((code, cols, time.monotonic()))
        self._rows += n
        if self._rows >= self.max_rows or len(self._msgs) == 1:
            self._notify()

    def _drop_oldest(self, cols: TickColumns) -> TickColumns:
        """Make room for ``cols`` by dropping the oldest rows (and its own, if it is too big)."""
        msgs = self._msgs
        n = cols.n
        lost = 0
        if n > self.buffer:
            lost = n - self.buffer
            cols = cols.slice(lost, n)
            n = self.buffer
        excess = self._rows + n - self.buffer
        while excess > 0:
            code, old, arrived = msgs[0]
            if old.n <= excess:
                msgs.popleft()
                taken = old.n
            else:  # keep the newest rows of the oldest push
                msgs[0] = (code, old.slice(excess, old.n), arrived)
                taken = excess
            self._rows -= taken
            lost += taken
            excess -= taken
        self._overflowed(lost)
        return cols

    def _put_after_hole(self, code: str, cols: TickColumns) -> None:
        """overflow="raise": keep the rows that fit; the rest is a hole the consumer meets."""
        later = self._later
        n = cols.n
        room = self.buffer - self._rows
        if room > 0:
            kept = cols if room >= n else cols.slice(0, room)
            entry = (code, kept, time.monotonic())
            (later[-1][1] if later else self._msgs).append(entry)
            self._rows += kept.n
        lost = n - max(room, 0)
        if lost > 0:
            self._overflowed(lost)
            if later and not later[-1][1]:
                later[-1] = (later[-1][0] + lost, later[-1][1])
            else:
                later.append((lost, deque()))
        self._notify()  # a hole closes the frame being filled: the consumer cuts it now

    async def __anext__(self) -> pl.DataFrame:
        while True:
            if self._msgs:
                due = self._msgs[0][2] + self.max_latency
                if (
                    self._rows >= self.max_rows
                    or self._later
                    or time.monotonic() >= due
                    or self._ended
                ):
                    return self._cut()
                if not self._ended and not self._closed:
                    await self._wait(due)
                    continue
            if self._later:
                lost, self._msgs = self._later.popleft()
                self._hole(lost)
            if self._ended or self._closed:
                self._raise_end()
            if not self._attached:
                await self.start()
                continue
            self._warned = False  # caught up: the next overflow is a new episode
            await self._wait()

    def _cut(self) -> pl.DataFrame:
        """Build one frame from the oldest buffered pushes (before any hole), <= ``max_rows``."""
        cols = ColumnBuffer(push_data_type=True)
        msgs = self._msgs
        take = self.max_rows
        while msgs and take > 0:
            code, ticks, arrived = msgs[0]
            n = ticks.n
            if n <= take:
                msgs.popleft()
                cols.add(code, ticks)
                take -= n
                self._rows -= n
            else:  # split a large push: leave the tail for the next frame
                cols.add(code, ticks.slice(0, take))
                msgs[0] = (code, ticks.slice(take, n), arrived)
                self._rows -= take
                take = 0
        if self._space is not None:
            self._released()
        return cols.to_frame()
