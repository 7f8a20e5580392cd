"""Bus consumers: ``async for tick in aiofutu.bus.subscribe(...)``, the same ``Ticker`` models.

One JetStream push consumer per subject (ephemeral, or durable), all feeding one bounded buffer
with the overflow policies of direct streams. Per security the consumer watches
the tape as a direct stream does (gaps by the HK trade counter) and adds what a bus needs with
two bridges: a tick that fills one bridge's hole may reach the stream after newer ticks. Such a
tick is never dropped as a duplicate (the stream already de-duplicated by msg id) and never
delivered out of order unannounced:

* on HK (trade-counter) securities, a tick after a hole is **held** up to ``reorder_window``
  seconds: if the missing ticks come meanwhile, everything is delivered in tape order; if not,
  a :class:`~aiofutu.Gap` is reported and the held ticks are delivered;
* a tick that arrives later than that, or that goes back in the sequence on a market without a
  trade counter, is a **late fill**: it is delivered, counted in ``late_fills``, passed to
  ``on_late_fill`` and recognised by :meth:`BusStream.is_late`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Literal

import anyio

from ..bridge import _subjects
from ..bridge._nats import connect_nats, import_nats, is_connection, require_asyncio
from ..errors import ClientClosed, ConfigurationError, FutuError, SlowConsumer
from ._acks import Acks, Mark, settle
from ._position import (
    ACK_INTERVAL,
    ACK_WAIT,
    Since,
    durable_name,
    resume_point,
    start_position,
)
from ._tape import TapeOrder, _Tape

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from types import TracebackType

    from ..models import Ticker
    from ..streams import Gap

__all__ = ("BusOverflow", "BusStream", "Since")

logger = logging.getLogger("aiofutu.bus")

BusOverflow = Literal["drop_oldest", "raise", "block"]


class _Hole:
    __slots__ = ("lost",)

    def __init__(self, lost: int) -> None:
        self.lost = lost


class BusStream(TapeOrder):
    """An async iterator of :class:`~aiofutu.Ticker` from the bus (see :func:`subscribe`).

    Counters: ``received`` (messages taken from NATS), ``dropped`` (lost to overflow),
    ``malformed`` (messages that break the contract: counted, logged, skipped), ``duplicates``
    (re-deliveries of a stream sequence already seen), ``late_fills``, ``gaps`` and ``pending``.
    """

    def __init__(
        self,
        nats: str | Any,
        codes: tuple[str, ...],
        *,
        kinds: tuple[str, ...],
        since: Since,
        durable: str | None,
        stream: str,
        buffer: int,
        overflow: BusOverflow,
        on_gap: Callable[[Gap], None] | None,
        on_late_fill: Callable[[Ticker], None] | None,
        reorder_window: float,
    ) -> None:
        self._target = nats
        self.codes = codes
        self.kinds = kinds
        self.since = since
        self.durable = durable
        self.stream = stream
        self.buffer = buffer
        self.overflow: BusOverflow = overflow
        self.on_gap = on_gap
        self.on_late_fill = on_late_fill
        self.reorder_window = reorder_window
        self.received = 0
        self.dropped = 0
        self.malformed = 0
        self.duplicates = 0
        self.late_fills = 0
        self.gaps: list[Gap] = []
        self._buf: deque[Ticker | _Hole] = deque()
        #: Futu-Published of each tick in ``_buf`` (holes have none), and of held ticks
        self._stamps: deque[float] = deque()
        self._held_stamps: dict[int, tuple[float, Mark | None]] = {}
        self._stamp = 0.0
        #: durable only: the resume point, and the mark of each tick in ``_buf`` (as stamps)
        self._acks = Acks() if durable is not None else None
        self._marks: deque[Mark | None] = deque()
        self._mark: Mark | None = None
        #: marks of the ticks handed out since the application last asked for more
        self._in_hand: list[Mark] = []
        #: when the bridge published the tick last returned (Unix seconds): the lag of the
        #: consumer is ``time.time() - last_published``
        self.last_published = 0.0
        self._count = 0
        self._tapes: dict[str, _Tape] = {c: _Tape(c) for c in codes}
        self._late: deque[Ticker] = deque(maxlen=1024)
        self._last_stream_seq: dict[str, int] = {}
        self._wake: anyio.Event | None = None
        self._space: anyio.Event | None = None
        self._nc: Any = None
        self._own = False
        self._subs: dict[str, Any] = {}
        self._seen_at_watch: dict[str, int] = {}
        self._started = False
        self._closed = False
        self._tasks: list[asyncio.Task[None]] = []
        self._warned = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (for a URL) and create the consumers (idempotent)."""
        if self._closed:
            raise ClientClosed("the bus stream is closed")
        if self._started:
            return
        require_asyncio("aiofutu.bus.subscribe")
        nats = import_nats()
        self._own = not is_connection(self._target)
        self._nc = await connect_nats(self._target, "aiofutu-bus") if self._own else self._target
        js = self._nc.jetstream()
        subjects = _subjects.subjects(self.kinds, self.codes)
        try:
            for subj in subjects:
                self._subs[subj] = await self._consumer(js, subj)
        except nats.js.errors.NotFoundError:
            await self._close_nats()
            raise ConfigurationError(
                f"stream {self.stream!r} not found on NATS (start `aiofutu bridge` first)"
            ) from None
        except BaseException:
            await self._close_nats()
            raise
        self._started = True
        loop = asyncio.get_running_loop()
        for subj in subjects:
            self._tasks.append(loop.create_task(self._watch(js, subj)))
        if self.reorder_window > 0:
            self._tasks.append(loop.create_task(self._expire_loop()))
        if self._acks is not None:
            self._tasks.append(loop.create_task(self._acks.run(ACK_INTERVAL)))

    async def _consumer(self, js: Any, subj: str) -> Any:
        """A push consumer on ``subj``: from the start position, or after the last message seen.

        Not nats-py's ordered consumer: that one restarts from stream sequence 1 when its
        heartbeats lapse before its first message (a loaded machine); here the resume point is
        ours, kept per subject, and :meth:`_watch` re-creates a consumer that is gone.
        """
        api = import_nats().js.api
        durable = None if self.durable is None else durable_name(self.durable, subj)
        after = self._last_stream_seq.get(subj, 0)
        if durable is not None:
            assert self._acks is not None
            after = await resume_point(js, self.stream, durable, self._acks, subj)
        position: dict[str, Any] = (
            {"deliver_policy": api.DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": after + 1}
            if after
            else start_position(self.since)
        )
        config = api.ConsumerConfig(
            ack_policy=api.AckPolicy.NONE if durable is None else api.AckPolicy.ALL,
            ack_wait=None if durable is None else ACK_WAIT,
            max_ack_pending=-1,
            inactive_threshold=None if durable is not None else 60.0,
            **position,
        )

        on_message = functools.partial(self._take, subj)  # a coroutine function for nats-py
        return await js.subscribe(
            subj,
            stream=self.stream,
            durable=durable,
            cb=on_message,
            manual_ack=True,
            flow_control=True,
            idle_heartbeat=5.0,
            config=config,
        )

    async def _watch(self, js: Any, subj: str) -> None:
        """Re-create a consumer that is gone (a broker restart), resuming after the last
        stream sequence taken (durable: after its acknowledged point)."""
        quiet = 0
        while not self.closed:
            await asyncio.sleep(0.5)
            seen = self._last_stream_seq.get(subj, 0)
            quiet = quiet + 1 if seen == self._seen_at_watch.get(subj, -1) else 0
            self._seen_at_watch[subj] = seen
            if quiet < 4:
                continue
            quiet = 0
            await recreate_if_lost(self._subs, subj, functools.partial(self._consumer, js, subj))

    async def _expire_loop(self) -> None:
        """Expire held ticks every half reorder window."""
        period = max(self.reorder_window / 2, 0.005)
        while not self._closed:
            await asyncio.sleep(period)
            self._expire(time.monotonic())

    async def commit(self, timeout: float = 5.0) -> bool:
        """Durable consumers: the application is done with every tick handed out so far;
        acknowledge the resume point now and wait for the server to confirm it. True when
        confirmed (a restart resumes after the last tick returned); a no-op otherwise."""
        if self._acks is None or self._nc is None:
            return self._acks is None
        settle(self._in_hand)
        return await self._acks.flush(self._nc, timeout=timeout)

    async def aclose(self, *, done: bool = True) -> None:
        """Stop the consumers and end iteration (after what is buffered).

        Durable: the resume point is acknowledged (confirmed) before the consumers go; with
        ``done=False`` (``async with`` left by an exception) the ticks handed out since the
        application last asked for more are not counted as done: a restart delivers them.
        """
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        self._notify()
        if self._space is not None:
            self._space.set()
        with anyio.CancelScope(shield=True), anyio.move_on_after(2):
            if self._acks is not None and self._nc is not None:
                if done:
                    settle(self._in_hand)
                await self._acks.flush(self._nc, timeout=1.5)
            for sub in self._subs.values():
                try:
                    await sub.unsubscribe()
                except Exception as exc:  # the connection may be gone already
                    logger.debug("bus: unsubscribe failed: %r", exc)
            await self._close_nats()

    async def _close_nats(self) -> None:
        if self._own and self._nc is not None:
            nc, self._nc = self._nc, None
            try:
                await nc.close()
            except Exception as exc:
                logger.debug("bus: closing NATS failed: %r", exc)

    async def __aenter__(self) -> BusStream:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose(done=exc_type is None or exc_type is GeneratorExit)

    # -- input (nats-py callbacks) -----------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` was called."""
        return self._closed

    async def _take(self, subj: str, msg: Any) -> None:
        if self._closed:
            return
        self.received += 1
        sseq = _stream_sequence(msg)
        last = self._last_stream_seq.get(subj, 0)
        if sseq and sseq <= last:
            self.duplicates += 1
            return
        if sseq:
            self._last_stream_seq[subj] = sseq
        acks = self._acks
        mark = self._mark = None if acks is None else acks.arrived(subj, sseq, msg)
        try:
            kind, code, sequence, name, published = _subjects.read_headers(msg.headers, self._tapes)
            if msg.subject != subj:  # every consumer filters one subject: kind and code
                raise _subjects.MalformedMessage(f"a message on {msg.subject!r} reached {subj!r}")
            if _subjects.subject(kind, code) != subj:  # a dict look-up
                raise _subjects.MalformedMessage(
                    f"headers name {kind} {code!r} but the subject is {subj!r}"
                )
            tick = _subjects.KINDS[kind].decode(code, name, msg.data)
            if tick.sequence != sequence:
                raise _subjects.MalformedMessage(
                    f"{_subjects.HEADER_SEQUENCE} {sequence} differs from the body's "
                    f"{tick.sequence}"
                )
        except (_subjects.MalformedMessage, FutuError, ValueError) as exc:
            if mark is not None:
                mark.done = True
            self.malformed += 1
            if self.malformed <= 10 or self.malformed % 1000 == 0:
                logger.warning(
                    "bus: skipped a malformed message on %s (%d so far): %s",
                    msg.subject,
                    self.malformed,
                    exc,
                )
            return
        self._stamp = published
        self._order(self._tapes[code], tick)
        if self.overflow == "block":
            while self._count >= self.buffer and not self._closed:
                self._space = anyio.Event()
                await self._space.wait()

    def _push(self, tick: Ticker) -> None:
        buf = self._buf
        held_stamps = self._held_stamps
        if held_stamps and id(tick) in held_stamps:
            stamp, mark = held_stamps.pop(id(tick))
        else:
            stamp, mark = self._stamp, self._mark
        if self._count >= self.buffer and self.overflow != "block":
            self.dropped += 1
            if not self._warned:
                self._warned = True
                logger.warning(
                    "bus stream on %s: consumer is behind, dropping ticks (buffer=%d, %s)",
                    ",".join(self.codes),
                    self.buffer,
                    self.overflow,
                )
            if self.overflow == "drop_oldest":
                while buf:
                    old = buf.popleft()
                    if not isinstance(old, _Hole):
                        self._count -= 1
                        self._stamps.popleft()
                        lost = self._marks.popleft()
                        if lost is not None:
                            lost.done = True
                        break
            else:  # raise: a hole the consumer meets at this point of the tape
                if mark is not None:
                    mark.done = True
                if buf and isinstance(buf[-1], _Hole):
                    buf[-1].lost += 1
                else:
                    buf.append(_Hole(1))
                self._notify()
                return
        buf.append(tick)
        self._stamps.append(stamp)
        self._marks.append(mark)
        self._count += 1
        self._notify()

    def _notify(self) -> None:
        wake = self._wake
        if wake is not None:
            self._wake = None
            wake.set()

    # -- output ------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Ticks buffered and not yet consumed (held ones included)."""
        return self._count + sum(len(t.held) for t in self._tapes.values())

    def __aiter__(self) -> BusStream:
        return self

    async def __anext__(self) -> Ticker:
        if self._in_hand:  # asking for more: done with what was handed out
            settle(self._in_hand)
        while True:
            item = self._pop()
            if item is not None:
                return item
            if self._closed:
                raise StopAsyncIteration
            await self._wait_more()

    def _pop(self) -> Ticker | None:
        """The next buffered tick, without waiting (None: nothing buffered); SlowConsumer at
        a hole of the tape."""
        buf = self._buf
        if not buf:
            return None
        item = buf.popleft()
        if isinstance(item, _Hole):
            self._warned = False
            raise SlowConsumer(item.lost, codes=self.codes)
        self._count -= 1
        self.last_published = self._stamps.popleft()
        mark = self._marks.popleft()
        if mark is not None:
            self._in_hand.append(mark)
        space = self._space
        if space is not None and self._count < self.buffer:
            self._space = None
            space.set()
        return item

    async def _wait_more(self, timeout: float | None = None) -> None:
        """Start if not started, else wait until something is buffered (or ``timeout``)."""
        if not self._started:
            await self.start()
            return
        self._warned = False
        self._wake = event = anyio.Event()
        with anyio.move_on_after(timeout):
            await event.wait()

    def stats(self) -> dict[str, Any]:
        """Counters for monitoring."""
        return {
            "received": self.received,
            "dropped": self.dropped,
            "malformed": self.malformed,
            "duplicates": self.duplicates,
            "late_fills": self.late_fills,
            "gaps": len(self.gaps),
            "pending": self.pending,
        }


def _stream_sequence(msg: Any) -> int:
    """The stream sequence of a JetStream message, read from its reply subject
    (``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>...``, or with a domain and an account
    hash after ``ACK``); 0 when it is not one. nats-py's ``msg.metadata`` also builds a
    datetime and a dataclass per message."""
    tokens = (msg.reply or "").split(".")
    try:
        if len(tokens) == 9 and tokens[1] == "ACK":
            return int(tokens[5])
        if len(tokens) >= 12 and tokens[1] == "ACK":
            return int(tokens[7])
    except ValueError:
        pass
    return 0


async def recreate_if_lost(
    subs: dict[str, Any], subj: str, create: Callable[[], Awaitable[Any]]
) -> None:
    """Check the consumer of ``subj`` with the broker; one that is gone (a broker restart) is
    replaced by ``create()``. A failure is logged and retried on the next check."""
    sub = subs.get(subj)
    try:
        if sub is None:
            raise LookupError("no consumer")
        await sub.consumer_info()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        logger.info("bus: consumer on %s lost (%r); re-creating it", subj, exc)
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        subs.pop(subj, None)
        try:
            subs[subj] = await create()
        except asyncio.CancelledError:
            raise
        except Exception as again:
            logger.info("bus: cannot re-create the consumer on %s yet: %r", subj, again)
