"""Bus consumers of the state and series kinds: the models of the direct client's streams.

``aiofutu.bus.quote_stream(url, codes)`` yields :class:`~aiofutu.Quote` as
``client.quote_stream(codes)`` does, and so on for order books, broker queues, K-lines and the
time share (:func:`aiofutu.bus.kind_stream` takes any bus kind's token). One JetStream push
consumer per subject, all feeding one :class:`BusItemStream` that gives each shape the
semantics of its direct stream:

* **states**: the consumer starts with the newest state the stream holds per subject (as
  OpenD's first push does on subscribe), then every update; ``conflate=True`` (the default)
  keeps at most one state per security waiting (``conflated`` counts those replaced), else
  every update through ``buffer`` with the overflow policies of direct streams;
* **series**: items are upserted by time as the direct router does: each change of the open
  item is an update with ``closed=False``, and a newer item closes it (``closed=True``, once,
  with its last values); ``closed_only=True`` yields only those. A repeat (the same item
  re-published, older items) is counted in ``duplicates`` and skipped.

A message that breaks the contract (bad headers, a body that does not parse) is counted in
``malformed``, logged and skipped. A consumer that the broker lost (a restart) is re-created
after the last stream sequence taken.

``since`` and ``durable`` follow the tick stream's rules (:mod:`._position`, :mod:`._acks`):
a durable consumer resumes after the last message the application is done with. A message is
done once the item it made was handed out and the application asked for the next (or called
``commit()``, or left ``async with`` without an exception), or once the stream let it go (a
state replaced by a newer one under ``conflate``, a repeat, a malformed message, an item lost
to overflow). With ``closed_only``, the messages of the open item are done only once its
closing update is handed out, so a restart never loses a close. A **state** stream that
resumes where the stream has nothing newer gets the newest state again first (a restarted
service needs one state to start from): a state may repeat once per restart; series never do.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from typing import TYPE_CHECKING, Any, Literal

import anyio

from ..bridge import _subjects
from ..bridge._buskinds import MalformedBody
from ..bridge._nats import connect_nats, import_nats, is_connection, require_asyncio
from ..errors import ClientClosed, ConfigurationError, SlowConsumer
from ._acks import Acks, Mark, settle
from ._consumer import _stream_sequence, recreate_if_lost
from ._position import (
    ACK_INTERVAL,
    ACK_WAIT,
    ItemSince,
    durable_name,
    resume_point,
    start_position,
)

if TYPE_CHECKING:
    from types import TracebackType

    from ..bridge._buskinds import BusKind

__all__ = ("BusItemStream", "ItemSince")

logger = logging.getLogger("aiofutu.bus")
_NO_MARKS: tuple[Mark, ...] = ()


#: seconds between the checks that each subject's consumer still exists (a broker restart)
WATCH_INTERVAL = 1.0


class _Hole:
    __slots__ = ("lost",)

    def __init__(self, lost: int) -> None:
        self.lost = lost


class BusItemStream:
    """``async for item in stream``: states or series updates of one bus kind, from the bus.

    Counters: ``received`` (messages taken), ``malformed``, ``duplicates``, ``conflated``,
    ``dropped`` (lost to overflow) and ``pending``.
    """

    def __init__(
        self,
        nats: str | Any,
        codes: tuple[str, ...],
        kind: BusKind,
        *,
        since: ItemSince = "last",
        durable: str | None = None,
        stream: str = "FUTU",
        conflate: bool = True,
        closed_only: bool = False,
        buffer: int = 10_000,
        overflow: Literal["drop_oldest", "raise", "block"] = "raise",
    ) -> None:
        self._target = nats
        self.codes = codes
        self.kind = kind
        self.since = since
        self.durable = durable
        self.stream = stream
        self.conflate = conflate and kind.shape == "state"
        self.closed_only = closed_only
        self.buffer = buffer
        self.overflow = overflow
        self.received = 0
        self.malformed = 0
        self.duplicates = 0
        self.conflated = 0
        self.dropped = 0
        #: waiting items: (model, the marks of the messages it stands for: durable only)
        self._latest: dict[str, tuple[Any, tuple[Mark, ...]]] = {}
        self._queue: deque[Any] = deque()
        self._queued = 0
        self._open: dict[str, Any] = {}
        #: durable: the resume point, the marks of the open series item not yet handed out
        #: (closed_only), of the message being taken, and of the items handed out since the
        #: application last asked for more
        self._acks = Acks() if durable is not None else None
        self._open_marks: dict[str, list[Mark]] = {}
        self._in_hand: list[Mark] = []
        self._last_seq: dict[str, int] = {}
        self._subs: dict[str, Any] = {}
        self._nc: Any = None
        self._own = False
        self._started = False
        self._closed = False
        self._tasks: list[asyncio.Task[None]] = []
        self._wake: anyio.Event | None = None
        self._space: anyio.Event | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (for a URL) and create the consumers (idempotent)."""
        if self._closed:
            raise ClientClosed("the bus stream is closed")
        if self._started:
            return
        require_asyncio(f"aiofutu.bus {self.kind.token} stream")
        nats = import_nats()
        self._own = not is_connection(self._target)
        self._nc = await connect_nats(self._target, "aiofutu-bus") if self._own else self._target
        js = self._nc.jetstream()
        subjects = _subjects.subjects((self.kind.token,), self.codes)
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
        if self._acks is not None:
            self._tasks.append(loop.create_task(self._acks.run(ACK_INTERVAL)))

    async def _consumer(self, js: Any, subj: str) -> Any:
        api = import_nats().js.api
        durable = None if self.durable is None else durable_name(self.durable, subj)
        after = self._last_seq.get(subj, 0)
        if durable is not None:
            assert self._acks is not None
            after = max(after, await resume_point(js, self.stream, durable, self._acks, subj))
            if after and self.kind.shape == "state" and not self._last_seq.get(subj):
                after = min(after, await self._newest(js, subj) - 1)  # a state to start from
        position = (
            {"deliver_policy": api.DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": after + 1}
            if after > 0
            else start_position(self.since)
        )
        config = api.ConsumerConfig(
            ack_policy=api.AckPolicy.NONE if durable is None else api.AckPolicy.ALL,
            ack_wait=None if durable is None else ACK_WAIT,
            max_ack_pending=-1,
            inactive_threshold=None if durable is not None else 60.0,
            **position,
        )
        return await js.subscribe(
            subj,
            stream=self.stream,
            durable=durable,
            cb=functools.partial(self._take, subj),
            manual_ack=True,
            flow_control=True,
            idle_heartbeat=5.0,
            config=config,
        )

    async def _newest(self, js: Any, subj: str) -> int:
        """The stream sequence of the newest message on ``subj`` (a huge one when none)."""
        try:
            return int((await js.get_last_msg(self.stream, subj)).seq)
        except import_nats().js.errors.NotFoundError:
            return 1 << 62

    async def _watch(self, js: Any, subj: str) -> None:
        """Re-create a consumer the broker lost, after the last stream sequence taken."""
        while not self._closed:
            await asyncio.sleep(WATCH_INTERVAL)
            await recreate_if_lost(self._subs, subj, functools.partial(self._consumer, js, subj))

    async def commit(self, timeout: float = 5.0) -> bool:
        """Durable consumers: the application is done with every item handed out so far;
        acknowledge the resume point now and wait for the server to confirm it. True when
        confirmed (a restart resumes after the last item returned); a no-op otherwise."""
        if self._acks is None or self._nc is None:
            return self._acks is None
        settle(self._in_hand)
        return await self._acks.flush(self._nc, timeout=timeout)

    async def aclose(self, *, done: bool = True) -> None:
        """Stop the consumers and end iteration (after what is buffered).

        Durable: the resume point is acknowledged (confirmed) before the consumers go; with
        ``done=False`` (``async with`` left by an exception) the items handed out since the
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
                except Exception as exc:
                    logger.debug("bus: unsubscribe failed: %r", exc)
            await self._close_nats()

    async def _close_nats(self) -> None:
        if self._own and self._nc is not None:
            nc, self._nc = self._nc, None
            try:
                await nc.close()
            except Exception as exc:
                logger.debug("bus: closing NATS failed: %r", exc)

    async def __aenter__(self) -> BusItemStream:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose(done=exc_type is None or exc_type is GeneratorExit)

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` was called."""
        return self._closed

    # -- input (nats-py callbacks) -----------------------------------------------------------

    async def _take(self, subj: str, msg: Any) -> None:
        if self._closed:
            return
        self.received += 1
        sseq = _stream_sequence(msg)
        acks = self._acks
        mark = None if acks is None else acks.arrived(subj, sseq, msg)
        if sseq:
            if sseq <= self._last_seq.get(subj, 0):
                self.duplicates += 1
                self._let_go(mark)
                return
            self._last_seq[subj] = sseq
        kind = self.kind
        try:
            code, _published = _subjects.read_item_headers(msg.headers, kind.token)
            if msg.subject != subj or _subjects.subject(kind.token, code) != subj:
                raise _subjects.MalformedMessage(f"{code!r} does not match {msg.subject!r}")
            item = kind.decode(msg.data)
            if kind.update is None and item.code != code:
                raise _subjects.MalformedMessage(f"a {item.code} body under {code!r}")
        except (_subjects.MalformedMessage, MalformedBody) as exc:
            self.malformed += 1
            self._let_go(mark)
            if self.malformed <= 10 or self.malformed % 1000 == 0:
                logger.warning(
                    "bus: skipped a malformed message on %s (%d so far): %s",
                    msg.subject,
                    self.malformed,
                    exc,
                )
            return
        marks = _NO_MARKS if mark is None else (mark,)
        if kind.update is None:
            self._put(code, item, marks)
        else:
            self._upsert(code, item, marks)
        if self.overflow == "block":
            while not self.conflate and self._queued >= self.buffer and not self._closed:
                self._space = anyio.Event()
                await self._space.wait()

    @staticmethod
    def _let_go(marks: Mark | tuple[Mark, ...] | list[Mark] | None) -> None:
        """The stream is done with these messages (nothing of them will be handed out)."""
        if marks is None:
            return
        if isinstance(marks, Mark):
            marks.done = True
            return
        for mark in marks:
            mark.done = True

    def _upsert(self, code: str, item: Any, marks: tuple[Mark, ...]) -> None:
        """The series rule of the direct router: a newer time closes the open item.

        ``closed_only``: the messages of the open item travel with its closing update."""
        update = self.kind.update
        assert update is not None
        cur = self._open.get(code)
        durable = self._acks is not None
        if cur is None or item.time > cur.time:
            if cur is not None:
                held = tuple(self._open_marks.pop(code, ())) if durable else _NO_MARKS
                self._put(code, update(code, cur, True), held)
            self._open[code] = item
            if not self.closed_only:
                self._put(code, update(code, item, False), marks)
            elif durable:
                self._open_marks[code] = list(marks)
        elif item.time == cur.time and item.__dict__ != cur.__dict__:
            self._open[code] = item
            if not self.closed_only:
                self._put(code, update(code, item, False), marks)
            elif durable:
                self._open_marks.setdefault(code, []).extend(marks)
        else:
            self.duplicates += 1
            self._let_go(marks)

    def _put(self, code: str, model: Any, marks: tuple[Mark, ...]) -> None:
        if self.conflate:
            old = self._latest.get(code)
            if old is not None:
                self.conflated += 1
                self._let_go(old[1])  # replaced by a newer state: done
            self._latest[code] = (model, marks)
        elif self._queued < self.buffer or self.overflow == "block":
            self._queue.append((model, marks))
            self._queued += 1
        elif self.overflow == "drop_oldest":
            while self._queue:
                old = self._queue.popleft()
                if type(old) is not _Hole:
                    self._let_go(old[1])
                    self._queued -= 1
                    break
            self._queue.append((model, marks))
            self._queued += 1
            self.dropped += 1
        else:
            self.dropped += 1
            self._let_go(marks)
            tail = self._queue[-1] if self._queue else None
            if type(tail) is _Hole:
                tail.lost += 1
            else:
                self._queue.append(_Hole(1))
        self._notify()

    def _notify(self) -> None:
        wake = self._wake
        if wake is not None:
            self._wake = None
            wake.set()

    # -- output ------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Items waiting for the consumer."""
        return len(self._latest) + self._queued

    def __aiter__(self) -> BusItemStream:
        return self

    async def __anext__(self) -> Any:
        in_hand = self._in_hand
        if in_hand:  # asking for more: done with what was handed out
            settle(in_hand)
        while True:
            if self._latest:
                model, marks = self._latest.pop(next(iter(self._latest)))
                in_hand.extend(marks)
                return model
            if self._queue:
                entry = self._queue.popleft()
                if type(entry) is _Hole:
                    raise SlowConsumer(entry.lost, codes=self.codes)
                self._queued -= 1
                space = self._space
                if space is not None and self._queued < self.buffer:
                    self._space = None
                    space.set()
                model, marks = entry
                in_hand.extend(marks)
                return model
            if self._closed:
                raise StopAsyncIteration
            if not self._started:
                await self.start()
                continue
            self._wake = event = anyio.Event()
            await event.wait()

    def stats(self) -> dict[str, Any]:
        """Counters for monitoring."""
        return {
            "kind": self.kind.token,
            "received": self.received,
            "malformed": self.malformed,
            "duplicates": self.duplicates,
            "conflated": self.conflated,
            "dropped": self.dropped,
            "pending": self.pending,
        }
