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
import datetime as _dt
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Literal

import anyio

from ..bridge import _subjects
from ..bridge._nats import connect_nats, import_nats, is_connection, require_asyncio
from ..codes import parse_code
from ..enums import Market
from ..errors import ClientClosed, ConfigurationError, FutuError, SlowConsumer
from ..streams import Gap

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from ..models import Ticker

__all__ = ("BusOverflow", "BusStream", "Since")

logger = logging.getLogger("aiofutu.bus")

Since = Literal["new", "all"] | _dt.datetime | _dt.timedelta | int
BusOverflow = Literal["drop_oldest", "raise", "block"]
_LOW32 = 0xFFFFFFFF
_HALF32 = 0x80000000
_RESEND_WINDOW = 10_000


class _Hole:
    __slots__ = ("lost",)

    def __init__(self, lost: int) -> None:
        self.lost = lost


class _Tape:
    """Per-security ordering state."""

    __slots__ = ("code", "counter", "held", "held_since", "last", "late_ids")

    def __init__(self, code: str) -> None:
        self.code = code
        self.counter = parse_code(code)[0] is Market.HK
        self.last = -1
        #: HK: ticks after a hole, sorted by sequence, waiting for the hole to be filled
        self.held: list[Ticker] = []
        self.held_since = 0.0


def _durable_name(prefix: str, subj: str) -> str:
    token = subj.split(".", 1)[1].replace(".", "-").replace("%", "_")
    return f"{prefix}-{token}"


class BusStream:
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
        self._held_stamps: dict[int, float] = {}
        self._stamp = 0.0
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
        self._last_msg: dict[str, Any] = {}
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

    async def _consumer(self, js: Any, subj: str) -> Any:
        """A push consumer on ``subj``: from the start position, or after the last message seen.

        Not nats-py's ordered consumer: that one restarts from stream sequence 1 when its
        heartbeats lapse before its first message (a loaded machine); here the resume point is
        ours, kept per subject, and :meth:`_watch` re-creates a consumer that is gone.
        """
        api = import_nats().js.api
        last = self._last_stream_seq.get(subj, 0)
        if last and self.durable is None:
            position: dict[str, Any] = {
                "deliver_policy": api.DeliverPolicy.BY_START_SEQUENCE,
                "opt_start_seq": last + 1,
            }
        else:
            position = self._start_position(api)
        durable = None if self.durable is None else _durable_name(self.durable, subj)
        config = api.ConsumerConfig(
            ack_policy=api.AckPolicy.NONE if durable is None else api.AckPolicy.ALL,
            max_ack_pending=-1,
            inactive_threshold=None if durable is not None else 60.0,
            **position,
        )

        async def on_message(msg: Any) -> None:
            await self._take(subj, msg)

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
        """Ack durable progress, and re-create a consumer that is gone (a broker restart),
        resuming after the last stream sequence taken."""
        quiet = 0
        acked = 0
        while not self.closed:
            await asyncio.sleep(0.5)
            seen = self._last_stream_seq.get(subj, 0)
            last_msg = self._last_msg.get(subj)
            if last_msg is not None and seen != acked and self.durable is not None:
                with contextlib.suppress(Exception):
                    await last_msg.ack()  # AckAll: a durable resumes after this message
                    acked = seen
            quiet = quiet + 1 if seen == self._seen_at_watch.get(subj, -1) else 0
            self._seen_at_watch[subj] = seen
            if quiet < 4:
                continue
            quiet = 0
            sub = self._subs.get(subj)
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
                self._subs.pop(subj, None)
                try:
                    self._subs[subj] = await self._consumer(js, subj)
                except asyncio.CancelledError:
                    raise
                except Exception as again:
                    logger.info("bus: cannot re-create the consumer on %s yet: %r", subj, again)

    async def _expire_loop(self) -> None:
        """Expire held ticks every half reorder window."""
        period = max(self.reorder_window / 2, 0.005)
        while not self._closed:
            await asyncio.sleep(period)
            self._expire(time.monotonic())

    def _start_position(self, api: Any) -> dict[str, Any]:
        since = self.since
        if since == "new":
            return {"deliver_policy": api.DeliverPolicy.NEW}
        if since == "all":
            return {"deliver_policy": api.DeliverPolicy.ALL}
        if isinstance(since, _dt.timedelta):
            since = _dt.datetime.now(_dt.timezone.utc) - since
        if isinstance(since, _dt.datetime):
            if since.tzinfo is None:
                raise ConfigurationError("since= as a datetime must be timezone-aware")
            stamp = since.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            return {"deliver_policy": api.DeliverPolicy.BY_START_TIME, "opt_start_time": stamp}
        return {"deliver_policy": api.DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": since}

    async def aclose(self) -> None:
        """Stop the consumers and end iteration (after what is buffered)."""
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        self._notify()
        if self._space is not None:
            self._space.set()
        with anyio.CancelScope(shield=True), anyio.move_on_after(2):
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
        await self.aclose()

    # -- input (nats-py callbacks) -----------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` was called."""
        return self._closed

    async def _take(self, subj: str, msg: Any) -> None:
        if self._closed:
            return
        self.received += 1
        try:
            meta = msg.metadata
            sseq = int(meta.sequence.stream)
        except Exception:
            sseq = 0
        last = self._last_stream_seq.get(subj, 0)
        if sseq and sseq <= last:
            self.duplicates += 1
            return
        if sseq:
            self._last_stream_seq[subj] = sseq
            self._last_msg[subj] = msg
        try:
            kind, code, sequence, name, published = _subjects.read_headers(msg.headers)
            if code not in self._tapes or msg.subject != _subjects.subject(kind, code):
                raise _subjects.MalformedMessage(
                    f"headers name {code!r} but the subject is {msg.subject!r}"
                )
            tick = _subjects.KINDS[kind].decode(code, name, msg.data)
            if tick.sequence != sequence:
                raise _subjects.MalformedMessage(
                    f"{_subjects.HEADER_SEQUENCE} {sequence} differs from the body's "
                    f"{tick.sequence}"
                )
        except (_subjects.MalformedMessage, FutuError, ValueError) as exc:
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

    def _order(self, tape: _Tape, tick: Ticker) -> None:
        seq = tick.sequence
        last = tape.last
        if last < 0 and not tape.held:
            tape.last = seq
            self._push(tick)
            return
        if not tape.counter:
            if seq < last:
                self._late_fill(tick)
            else:
                tape.last = seq
                self._push(tick)
            return
        step = ((seq & _LOW32) - (last & _LOW32)) & _LOW32
        if step == 1:
            tape.last = seq
            self._push(tick)
            self._release_held(tape)
        elif 0 < step <= _HALF32:  # after a hole: hold it a moment for a late fill
            if self.reorder_window <= 0:
                self._gap(Gap(tape.code, last, seq, step - 1))
                tape.last = seq
                self._push(tick)
                return
            if not tape.held:
                tape.held_since = time.monotonic()
            held = tape.held
            if all(t.sequence != seq for t in held):
                self._held_stamps[id(tick)] = self._stamp
                held.append(tick)
                held.sort(key=_seq_of)
        elif step == 0 or ((last - seq) & _LOW32) <= _RESEND_WINDOW:
            self._late_fill(tick)  # behind the tape: a fill that came after its gap was told
        else:
            self._gap(Gap(tape.code, last, seq, None, True))
            tape.last = seq
            self._push(tick)

    def _release_held(self, tape: _Tape) -> None:
        held = tape.held
        while held and ((held[0].sequence & _LOW32) - (tape.last & _LOW32)) & _LOW32 == 1:
            tick = held.pop(0)
            tape.last = tick.sequence
            self._push(tick)
        if held:
            tape.held_since = time.monotonic()

    def _expire(self, now: float) -> None:
        """Held ticks whose hole was not filled within the window: report it, deliver them."""
        for tape in self._tapes.values():
            if tape.held and now - tape.held_since >= self.reorder_window:
                first = tape.held[0]
                step = ((first.sequence & _LOW32) - (tape.last & _LOW32)) & _LOW32
                self._gap(Gap(tape.code, tape.last, first.sequence, step - 1))
                tape.last = first.sequence
                tape.held.pop(0)
                self._push(first)
                self._release_held(tape)
                while tape.held:  # more holes among the held ones: report each
                    nxt = tape.held[0]
                    step = ((nxt.sequence & _LOW32) - (tape.last & _LOW32)) & _LOW32
                    self._gap(Gap(tape.code, tape.last, nxt.sequence, step - 1))
                    tape.last = nxt.sequence
                    tape.held.pop(0)
                    self._push(nxt)
                    self._release_held(tape)

    def _late_fill(self, tick: Ticker) -> None:
        self.late_fills += 1
        self._late.append(tick)
        logger.info("bus: late fill %s sequence %d (after newer ticks)", tick.code, tick.sequence)
        if self.on_late_fill is not None:
            try:
                self.on_late_fill(tick)
            except Exception:
                logger.exception("on_late_fill callback failed")
        self._push(tick)

    def is_late(self, tick: Ticker) -> bool:
        """Whether ``tick`` (one of the latest 1024 late fills) came after newer ticks."""
        return any(t is tick for t in self._late)

    def _gap(self, gap: Gap) -> None:
        self.gaps.append(gap)
        logger.warning(
            "bus: gap on %s: %s tick(s) lost between sequences %d and %d",
            gap.code,
            "an unknown number of" if gap.missing is None else gap.missing,
            gap.after,
            gap.before,
        )
        if self.on_gap is not None:
            try:
                self.on_gap(gap)
            except Exception:
                logger.exception("on_gap callback failed")

    def _push(self, tick: Ticker) -> None:
        buf = self._buf
        held_stamps = self._held_stamps
        stamp = held_stamps.pop(id(tick), self._stamp) if held_stamps else self._stamp
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
                        break
            else:  # raise: a hole the consumer meets at this point of the tape
                if buf and isinstance(buf[-1], _Hole):
                    buf[-1].lost += 1
                else:
                    buf.append(_Hole(1))
                self._notify()
                return
        buf.append(tick)
        self._stamps.append(stamp)
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
        buf = self._buf
        while True:
            if buf:
                item = buf.popleft()
                if isinstance(item, _Hole):
                    self._warned = False
                    raise SlowConsumer(item.lost, codes=self.codes)
                self._count -= 1
                self.last_published = self._stamps.popleft()
                space = self._space
                if space is not None and self._count < self.buffer:
                    self._space = None
                    space.set()
                return item
            if self._closed:
                raise StopAsyncIteration
            if not self._started:
                await self.start()
                continue
            self._warned = False
            self._wake = event = anyio.Event()
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


def _seq_of(tick: Ticker) -> int:
    return tick.sequence
