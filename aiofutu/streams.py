"""Ticker push streams: bounded, per-consumer buffers fed by the connection's reader.

The reader calls :meth:`TickerRouter.dispatch` synchronously for every Qot_UpdateTicker push. The
router parses the message once, drops duplicates (same code and ``sequence``), notes gaps and
resets in HK trade counters, builds models once for all model streams of that code, and appends
to each stream's buffer. It never awaits and never runs user code; consumers are woken once per
batch, not once per tick. A stream that overflows records where its ticks were lost, so that
its consumer is told at that point of the tape (see :class:`TickerStream`).
"""

from __future__ import annotations

import logging
import math
import operator
import sys
import time
from collections import deque
from itertools import repeat
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import anyio
import anyio.to_thread

from . import _columns
from ._pb import qot_common_pb2, qot_update_ticker_pb2
from .codes import format_code, parse_code
from .enums import Market
from .errors import ClientClosed, ConfigurationError, ConnectionLost, FutuError, SlowConsumer
from .frames import ColumnBuffer, _polars
from .models import Ticker, tickers_from_columns

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover
    from typing_extensions import Self

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    import polars as pl

    from ._codec import Frame
    from ._columns import TickColumns
    from .client import Client

__all__ = ("Gap", "Overflow", "TickerFrameStream", "TickerStream")

logger = logging.getLogger("aiofutu.streams")

Overflow = Literal["drop_oldest", "raise", "block"]
_OVERFLOWS = ("drop_oldest", "raise", "block")
_LOW32 = 0xFFFFFFFF
_HALF32 = 0x80000000
#: A re-sent tick is one OpenD still holds (its window is 1000 ticks): its trade counter is at
#: most this far behind the last one seen (ten times the window, for gaps inside it). A tick
#: further behind is a new tape (see ``TickerRouter._dedupe_and_watch``).
_RESEND_WINDOW = 10_000
_UpdateTickerResponse = qot_update_ticker_pb2.Response
_now = time.time
_lt = operator.lt
_and = operator.and_
_security_key = _columns.security_key
_decode = _columns.decode
_parse_security = qot_common_pb2.Security.FromString
#: Markets whose ``sequence`` low 32 bits are a per-security trade counter (fact sheet §11).
_COUNTER_MARKETS = frozenset({Market.HK.wire})


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


class _Sink:
    """What the router needs from a stream: a place to put ticks and a way to end it."""

    codes: tuple[str, ...]
    wants_models: bool
    #: models built during the current read chunk, handed over in one piece by ``flush``
    staged: list[Ticker]

    def _put_models(self, ticks: list[Ticker]) -> None:
        raise NotImplementedError

    def _put_raw(self, code: str, cols: TickColumns) -> None:
        raise NotImplementedError

    def _put_gap(self, gap: Gap) -> None:
        raise NotImplementedError

    def _end(self, error: FutuError | None) -> None:
        raise NotImplementedError

    def _is_full(self) -> bool:
        raise NotImplementedError


class _Bounded(_Sink):
    """Buffer accounting and consumer wake-up shared by both stream kinds."""

    def __init__(
        self,
        client: Client,
        codes: tuple[str, ...],
        buffer: int,
        overflow: Overflow,
        on_gap: Callable[[Gap], None] | None,
    ) -> None:
        self._client = client
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
            await self._client._attach_stream(self)
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
                self._client._detach_stream(self)
            self._end(None)


class TickerStream(_Bounded):
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

    wants_models = True

    def __init__(
        self,
        client: Client,
        codes: tuple[str, ...],
        *,
        buffer: int = 10_000,
        overflow: Overflow = "raise",
        on_gap: Callable[[Gap], None] | None = None,
    ) -> None:
        super().__init__(client, codes, _check_buffer(buffer), _check_overflow(overflow), on_gap)
        #: the segment being consumed
        self._buf: deque[Ticker] = deque()
        #: overflow="raise" only: the segments after a hole, each with the ticks lost before it
        self._later: deque[tuple[int, deque[Ticker]]] = deque()
        self._queued = 0  # ticks in ``_later``

    @property
    def pending(self) -> int:
        """Ticks buffered and not yet consumed."""
        return len(self._buf) + self._queued

    def _is_full(self) -> bool:
        return len(self._buf) + self._queued >= self.buffer

    def _put_models(self, ticks: list[Ticker]) -> None:
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

    def _put_after_hole(self, ticks: list[Ticker]) -> None:
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
        raise AssertionError("TickerStream takes models")  # pragma: no cover

    def _next_segment(self) -> deque[Ticker]:
        """Step over the hole after the current segment: raise for it, then go on after it."""
        lost, segment = self._later.popleft()
        self._queued -= len(segment)
        self._buf = segment
        self._hole(lost)
        return segment  # pragma: no cover (a hole always lost something)

    async def __anext__(self) -> Ticker:
        buf = self._buf
        while True:
            if buf:
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
            await self._wait()

    def drain(self) -> list[Ticker]:
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


class TickerFrameStream(_Bounded):
    """``async for df in frames``: polars DataFrames of pushed ticks, no model per tick.

    Each frame holds at most ``max_rows`` ticks and is yielded no later than ``max_latency``
    seconds after its first tick arrived. ``buffer`` bounds the rows held for the consumer.
    Overflow works as in :class:`TickerStream`, counted in rows: a frame never spans a hole.
    """

    wants_models = False

    def __init__(
        self,
        client: Client,
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
        super().__init__(client, codes, _check_buffer(buffer), _check_overflow(overflow), on_gap)
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


class _Route:
    """Per-security dispatch state: its streams, the last sequence seen, gap watching."""

    __slots__ = (
        "code",
        "counter",
        "dirty",
        "held",
        "last_push",
        "last_seq",
        "local",
        "market",
        "model_sinks",
        "raw_sinks",
        "reset_after",
    )

    def __init__(self, market: int, code: str) -> None:
        self.market = market
        self.local = code
        self.dirty = False
        self.code = format_code(market, code)
        self.counter = market in _COUNTER_MARKETS
        self.last_seq = -1
        self.last_push = 0.0
        self.model_sinks: list[_Sink] = []
        self.raw_sinks: list[_Sink] = []
        #: pushes held back while a reconnect backfills this security
        self.held: list[TickColumns] | None = None
        #: after a reset seen by a backfill: the last sequence of the old tape, reported (as a
        #: reset Gap) before the next tick delivered; -1 when none is pending
        self.reset_after = -1

    def is_for(self, cols: TickColumns) -> bool:
        """Whether decoded ``cols`` are of this security (a routing key is only a hint)."""
        return cols.code == self.local and cols.market == self.market


def _decode_all(bodies: list[bytes]) -> TickColumns | None:
    """One columnar parse of ``bodies`` joined (``None`` when the view declines them)."""
    n = len(bodies)
    return _decode(bodies[0] if n == 1 else b"".join(bodies), n)


class TickerRouter:
    """Dispatches Qot_UpdateTicker pushes to the streams of each code (runs in the reader)."""

    def __init__(self) -> None:
        self._routes: dict[tuple[int, str], _Route] = {}
        #: encoded Security (see ``security_key``) -> (market, code)
        self._keys: dict[bytes, tuple[int, str] | None] = {}
        self._block_sinks: set[int] = set()
        self._multi_code_sinks: set[int] = set()
        #: whether the last read chunk carried pushes of a single security (see dispatch_batch)
        self._one_security = False
        self._dirty_sinks: list[_Sink] = []
        self._dirty_routes: list[_Route] = []
        self.unrouted = 0
        self.duplicates = 0
        self.bad_pushes = 0

    def attach(self, sink: _Sink) -> None:
        for code in sink.codes:
            market, local = parse_code(code)
            key = (market.wire, local)
            route = self._routes.get(key)
            if route is None:
                route = self._routes[key] = _Route(market.wire, local)
            elif not (route.model_sinks or route.raw_sinks):
                # pushes went unwatched since the last stream left: no continuity to claim
                route.last_seq = route.reset_after = -1
            (route.model_sinks if sink.wants_models else route.raw_sinks).append(sink)
        if isinstance(sink, _Bounded) and sink.overflow == "block":
            self._block_sinks.add(id(sink))
        if len(sink.codes) > 1:
            self._multi_code_sinks.add(id(sink))

    def detach(self, sink: _Sink) -> None:
        for route in self._routes.values():
            for sinks in (route.model_sinks, route.raw_sinks):
                if sink in sinks:
                    sinks.remove(sink)
        self._block_sinks.discard(id(sink))
        self._multi_code_sinks.discard(id(sink))

    def sinks(self) -> Iterable[_Sink]:
        seen: set[int] = set()
        for route in self._routes.values():
            for s in (*route.model_sinks, *route.raw_sinks):
                if id(s) not in seen:
                    seen.add(id(s))
                    yield s

    @property
    def last_push(self) -> dict[str, float]:
        """Wall-clock time of the last push per code."""
        return {r.code: r.last_push for r in self._routes.values() if r.last_push}

    def end_all(self, error: FutuError | None) -> None:
        for sink in list(self.sinks()):
            sink._end(error)

    def dispatch(self, frame: Frame) -> None:
        """Handle one push frame of protocol 3011 (see :meth:`dispatch_batch`)."""
        self.dispatch_batch([frame])

    def dispatch_batch(self, frames: list[Frame]) -> None:
        """Handle the 3011 push frames of one read chunk, in arrival order (the hot path).

        Pushes are grouped by security without parsing (:func:`~aiofutu._columns.security_key`),
        and each security's pushes are parsed together into columns, so the per-tick work left
        in Python is the dedupe check and the model. Models are staged per stream and handed
        over by :meth:`flush`, which the reader calls once per read chunk: consumers wake once
        per chunk, not once per message.
        """
        if self._one_security and len(frames) > 1 and self._dispatch_one_security(frames):
            return
        # A stream of several codes must see them interleaved as they arrived: then only
        # consecutive pushes of one security are parsed together. Otherwise a security's
        # pushes are parsed together whatever came between them.
        ordered = bool(self._multi_code_sinks)
        groups: dict[_Route, list[bytes]] = {}
        runs: list[tuple[_Route, list[bytes]]] = []
        run_route: _Route | None = None
        keys = self._keys
        routes = self._routes
        for frame in frames:
            body = frame[2]
            key = _security_key(body)
            wire = None
            if key is not None:
                wire = keys.get(key)
                if wire is None:
                    wire = self._learn_key(key)
            if wire is None:
                wire = self._exact_security(body)
            route = routes.get(wire) if wire is not None else None
            if route is None or not (route.model_sinks or route.raw_sinks):
                if wire is not None:
                    self.unrouted += 1
                continue
            if ordered:
                if route is run_route:
                    runs[-1][1].append(body)
                else:
                    runs.append((route, [body]))
                    run_route = route
                continue
            group = groups.get(route)
            if group is None:
                groups[route] = [body]
            else:
                group.append(body)
        self._one_security = len(runs if ordered else groups) == 1
        for route, bodies in runs if ordered else groups.items():
            self._decode_group(route, bodies)

    def _dispatch_one_security(self, frames: list[Frame]) -> bool:
        """The previous chunk held one security: try this one as a single parse, no grouping.

        The parse itself verifies that every push is of that security; if not (or if anything
        is irregular) nothing was delivered, and the caller takes the general path.
        """
        key = _security_key(frames[0][2])
        wire = self._keys.get(key) if key is not None else None
        route = self._routes.get(wire) if wire is not None else None
        if route is not None and route.held is None and (route.model_sinks or route.raw_sinks):
            cols = _decode_all([frame[2] for frame in frames])
            if cols is not None and route.is_for(cols):
                self._deliver(route, cols)
                return True
        self._one_security = False
        return False

    def _decode_group(self, route: _Route, bodies: list[bytes]) -> None:
        """Parse pushes of one security together; halve the group around anything irregular.

        One odd push among many (say, an optional field on some of its ticks only) costs a few
        extra parses, not one per push; a push the view cannot represent is decoded exactly.
        """
        n = len(bodies)
        cols = _decode_all(bodies)
        if cols is not None and route.is_for(cols):
            self._deliver_or_hold(route, cols)
        elif n > 1:
            half = n // 2
            self._decode_group(route, bodies[:half])
            self._decode_group(route, bodies[half:])
        else:
            one = cols if cols is not None else self._exact(bodies[0])
            if one is None:
                return
            if route.is_for(one):
                self._deliver_or_hold(route, one)
                return
            # the key was a wrong hint (a layout no serializer writes): re-route
            other = self._routes.get((one.market, one.code))
            if other is None or not (other.model_sinks or other.raw_sinks):
                self.unrouted += 1
            else:
                self._deliver_or_hold(other, one)

    def _deliver_or_hold(self, route: _Route, cols: TickColumns) -> None:
        if route.held is not None:
            route.held.append(cols)
        else:
            self._deliver(route, cols)

    def _learn_key(self, key: bytes) -> tuple[int, str] | None:
        try:
            sec = _parse_security(key)
        except Exception:  # not a Security after all: the message is decoded exactly
            return None
        if not (sec.HasField("market") and sec.HasField("code")):
            return None
        keys = self._keys
        if len(keys) >= 4096:  # bounded: codes nobody streams must not grow it forever
            keys.clear()
        wire = keys[key] = (sec.market, sec.code)
        return wire

    def _exact_security(self, body: bytes) -> tuple[int, str] | None:
        """The security of a push whose layout :func:`security_key` does not know."""
        response = self._parse_exact(body)
        if response is None:
            return None
        sec = response.s2c.security
        return (sec.market, sec.code)

    def _parse_exact(self, body: bytes) -> Any:
        response = _UpdateTickerResponse()
        try:
            response.ParseFromString(body)
        except Exception as exc:  # protobuf raises DecodeError; keep the reader alive regardless
            self.bad_pushes += 1
            logger.warning("dropped a Qot_UpdateTicker push that does not parse: %s", exc)
            return None
        if response.retType != 0:
            self.bad_pushes += 1
            logger.warning(
                "Qot_UpdateTicker push with retType %d: %s", response.retType, response.retMsg
            )
            return None
        return response

    def _exact(self, body: bytes) -> TickColumns | None:
        """Columns of one push through the exact schema (presence per field, errors logged)."""
        response = self._parse_exact(body)
        if response is None:
            return None
        s2c = response.s2c
        sec = s2c.security
        return _columns.from_pb(sec.market, sec.code, s2c.name, s2c.tickerList)

    def _deliver(self, route: _Route, cols: TickColumns) -> None:
        """De-duplicate, watch gaps, and stage ticks for every stream of the security."""
        n = cols.n
        if not n:
            return
        seqs = cols.sequence
        last = route.last_seq
        first = seqs[0]
        if (
            route.counter
            and first > last
            and ((last < 0 and route.reset_after < 0) or (first & _LOW32) == (last & _LOW32) + 1)
            and seqs == list(range(first, first + n))
        ):
            pass  # the usual case: consecutive trades right after the last one (a wrap of the
            # low 32 bits inside the run is a counter restart, which is no gap either)
        else:
            checked = self._dedupe_and_watch(route, cols)
            if checked is None:
                return
            cols = checked
            seqs = cols.sequence
        route.last_seq = seqs[-1]
        if not route.dirty:
            route.dirty = True
            self._dirty_routes.append(route)
        sinks = route.model_sinks
        if sinks:
            if len(sinks) == 1:
                sink = sinks[0]
                staged = sink.staged
                if not staged:
                    self._dirty_sinks.append(sink)
                tickers_from_columns(route.code, cols, staged)
            else:
                models: list[Ticker] = []
                tickers_from_columns(route.code, cols, models)
                for sink in sinks:
                    if not sink.staged:
                        self._dirty_sinks.append(sink)
                    sink.staged.extend(models)
        for sink in route.raw_sinks:
            sink._put_raw(route.code, cols)

    def _dedupe_and_watch(self, route: _Route, cols: TickColumns) -> TickColumns | None:
        """Drop re-sent ticks, report counter gaps and resets of the tape.

        A tick whose ``sequence`` is not above the last one kept is a re-send (OpenD's first
        push, a refill) and is dropped, except on a trade-counter market (HK) when its counter
        is more than ``_RESEND_WINDOW`` trades behind the last one: OpenD cannot re-send a tick
        that old, so it starts a new tape (a gateway restarted with its clock behind) and is
        kept. Between two kept ticks of such a market the counter (low 32 bits, modulo 2**32)
        tells the rest: one step is the next trade, more is a gap of known size, and none or
        backwards is a reset (OpenD restart, a new trading day, another gateway), reported as
        ``Gap(..., missing=None, reset=True)``.
        """
        seqs = cols.sequence
        n = cols.n
        last = route.last_seq
        counter = route.counter
        if seqs[0] <= last or (n > 1 and not all(map(_lt, seqs, seqs[1:]))):
            keep: list[int] = []
            cur = last
            for i, s in enumerate(seqs):
                if s > cur or (counter and cur >= 0 and ((cur - s) & _LOW32) > _RESEND_WINDOW):
                    keep.append(i)
                    cur = s
            self.duplicates += n - len(keep)
            if not keep:
                return None
            if len(keep) < n:
                cols = cols.take(keep)
                seqs = cols.sequence
                n = cols.n
        if last < 0 and route.reset_after >= 0:  # a backfill found another tape: say so first
            self._report(Gap(route.code, route.reset_after, seqs[0], None, True), route)
            route.reset_after = -1
        if counter:
            lows = list(map(_and, seqs, repeat(_LOW32, n)))
            first = lows[0]
            start = (last & _LOW32) + 1 if last >= 0 else first
            if first != start or lows != list(range(first, first + n)):
                prev = last
                for s in seqs:
                    if prev >= 0 and (s & _LOW32) != (prev & _LOW32) + 1:
                        self._gap(route, prev, s)
                    prev = s
        return cols

    def flush(self) -> Any:
        """Hand staged ticks to their streams; the reader calls this after every read chunk.

        Returns an awaitable when an ``overflow="block"`` stream is full, so that the reader
        stops reading until its consumer catches up.
        """
        if self._dirty_routes:
            now = _now()
            for route in self._dirty_routes:
                route.dirty = False
                route.last_push = now
            self._dirty_routes.clear()
        dirty = self._dirty_sinks
        if dirty:
            self._dirty_sinks = []
            for sink in dirty:
                batch = sink.staged
                sink.staged = []
                sink._put_models(batch)
        if self._block_sinks:
            blocked = [
                sink
                for sink in self.sinks()
                if id(sink) in self._block_sinks and sink._is_full() and isinstance(sink, _Bounded)
            ]
            if blocked:
                return _wait_all(blocked)
        return None

    def _gap(self, route: _Route, prev: int, seq: int) -> None:
        """Two kept ticks whose trade counters are not one apart: a gap or a reset."""
        step = (seq - prev) & _LOW32  # modulo 2**32: a counter that wraps goes on
        if step == 1:
            return
        if 0 < step <= _HALF32:
            self._report(Gap(route.code, prev, seq, step - 1), route)
        else:  # the same counter again, or backwards
            self._report(Gap(route.code, prev, seq, None, True), route)

    def _report(self, gap: Gap, route: _Route) -> None:
        if gap.reset:
            logger.warning(
                "tape of %s restarted: the trade counter went back at sequence %d after %d "
                "(OpenD restart, new trading day or another gateway); losses unknown",
                gap.code,
                gap.before,
                gap.after,
            )
        else:
            logger.warning(
                "gap on %s: %s tick(s) lost between sequences %d and %d",
                gap.code,
                "an unknown number of" if gap.missing is None else gap.missing,
                gap.after,
                gap.before,
            )
        for sink in (*route.model_sinks, *route.raw_sinks):
            sink._put_gap(gap)

    # -- reconnect support -------------------------------------------------------------------

    def streamed_securities(self) -> list[tuple[int, str, int]]:
        """(market, code, last sequence) of every security with an open stream."""
        return [
            (key[0], key[1], route.last_seq)
            for key, route in self._routes.items()
            if route.model_sinks or route.raw_sinks
        ]

    def hold(self) -> None:
        """Hold back live pushes of streamed securities until :meth:`release` (after backfill)."""
        for route in self._routes.values():
            if (route.model_sinks or route.raw_sinks) and route.held is None:
                route.held = []

    def backfill(self, cols: TickColumns, window: int) -> None:
        """Deliver ticks fetched after a reconnect that are newer than the last one delivered.

        ``window`` is how many ticks OpenD keeps: when all ``window`` returned ticks are new and
        the sequence has no trade counter, more may have been lost, so a gap is reported.

        When even the newest returned tick is older than the last one delivered, this OpenD does
        not hold the tape the stream was on (it restarted without it, or it is another gateway):
        its ticks cannot be told apart from re-sends, so none is delivered; the stream goes on
        with the next live tick, after a reset ``Gap`` (``missing=None``).
        """
        route = self._routes.get((cols.market, cols.code))
        if route is None or route.last_seq < 0:
            return
        last = route.last_seq
        if cols.n and cols.sequence[-1] < last:
            route.reset_after = last
            route.last_seq = -1
            return
        keep = [i for i, s in enumerate(cols.sequence) if s > last]
        if not keep:
            return
        newer = cols.take(keep) if len(keep) < cols.n else cols
        first = newer.sequence[0]
        if not route.counter and newer.n == cols.n and cols.n >= window:
            self._report(Gap(route.code, last, first, None), route)
            route.last_seq = first - 1
        self._deliver(route, newer)
        self.flush()

    def release(self) -> None:
        """Deliver the pushes held during a reconnect, in arrival order."""
        for route in self._routes.values():
            held = route.held
            if held is None:
                continue
            route.held = None
            for cols in held:
                self._deliver(route, cols)
        self.flush()

    def fail(self, codes: set[tuple[int, str]], error: FutuError) -> None:
        """End the streams of ``codes`` with ``error`` (a subscription OpenD refused to restore)."""
        for key in codes:
            route = self._routes.get(key)
            if route is not None:
                for sink in (*route.model_sinks, *route.raw_sinks):
                    sink._end(error)


async def _wait_all(sinks: list[_Bounded]) -> None:
    for sink in sinks:
        await sink._wait_space()
