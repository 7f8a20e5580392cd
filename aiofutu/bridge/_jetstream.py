"""A bounded, pipelined JetStream publisher with go-back-N resend on a missing ack.

Two tasks and one subscription, none of which ever blocks the OpenD reader:

* the **sender** takes messages from the bounded queue and publishes them with plain
  ``nc.publish`` and a reply subject of its own (``<inbox>.<n>``), at most ``max_pending``
  without an ack. Each batch is written without yielding to the loop, so nats-py's flusher
  sends it in one write (nats-py's ``publish_async`` yields once per message, a task and a
  socket write each);
* the **ack subscription** (``<inbox>.*``) matches each JetStream ack to its message by
  ``n`` and counts, in publish order, what the stream stored and what it already held;
* the **acker** watches the oldest unacknowledged message: when its ack does not come in
  ``ack_timeout`` (the broker is down or slow), or the stream refused it, every message in
  flight goes back to the head of the queue, in order, and is sent again. JetStream's
  de-duplication by ``Nats-Msg-Id`` stores each one once; per subject the stream keeps the tape
  order. Acks of a message sent before a resend are ignored (it has a new ``n``).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import anyio.lowlevel

from ..errors import ConfigurationError
from ._nats import import_nats

__all__ = ("BridgeOverflow", "BridgeStats", "Publisher")

logger = logging.getLogger("aiofutu.bridge")

BridgeOverflow = Literal["drop", "stall"]
DEFAULT_BUFFER = 200_000
DEFAULT_MAX_PENDING = 4_000
_BATCH = 512
_Item = tuple[str, bytes, dict[str, str]]


@dataclass
class BridgeStats:
    """Counters of one bridge (``stats()`` and the ``--stats`` line)."""

    #: messages the stream stored (acked, not duplicates)
    published: int = 0
    #: messages the stream acknowledged as duplicates (already stored by this or another bridge)
    duplicates: int = 0
    #: messages sent and not yet acknowledged
    pending_acks: int = 0
    #: ticks lost to the publish queue's bound (``overflow="drop"``)
    dropped: int = 0
    #: messages waiting in the publish queue
    queued: int = 0
    #: messages sent again after a missing ack (stored once all the same)
    resent: int = 0
    #: ticks of a backfill (startup) that the stream already held, not sent
    skipped: int = 0
    #: whether the NATS connection is up
    nats_connected: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def unpublished(self) -> int:
        """Ticks taken from OpenD that the stream has not acknowledged (queued or in flight)."""
        return self.queued + self.pending_acks

    def line(self) -> str:
        """One line for logs and ``--stats``."""
        return (
            f"published={self.published} duplicates={self.duplicates} "
            f"pending_acks={self.pending_acks} dropped={self.dropped} queued={self.queued} "
            f"resent={self.resent} skipped={self.skipped} "
            f"nats={'up' if self.nats_connected else 'down'}"
        )


class _Sent:
    """One message in flight: its number (the reply subject's last token) and its outcome."""

    __slots__ = ("item", "n", "outcome")

    def __init__(self, n: int, item: _Item) -> None:
        self.n = n
        self.item = item
        #: None until the ack: "stored", "duplicate", or the stream's error text
        self.outcome: str | None = None


class Publisher:
    """A bounded, pipelined JetStream publisher (see the module's docstring)."""

    def __init__(
        self,
        nc: Any,
        *,
        stream: str,
        buffer: int = DEFAULT_BUFFER,
        overflow: BridgeOverflow = "drop",
        max_pending: int = DEFAULT_MAX_PENDING,
        ack_timeout: float = 2.0,
    ) -> None:
        if type(buffer) is not int or buffer < 1:
            raise ConfigurationError(f"buffer must be a positive int, got {buffer!r}")
        if overflow not in ("drop", "stall"):
            raise ConfigurationError(f"overflow must be 'drop' or 'stall', got {overflow!r}")
        if type(max_pending) is not int or max_pending < 1:
            raise ConfigurationError(f"max_pending must be a positive int, got {max_pending!r}")
        self._nats = import_nats()
        self._nc = nc
        self.stream = stream
        self.buffer = buffer
        self.overflow: BridgeOverflow = overflow
        self.max_pending = max_pending
        self.ack_timeout = ack_timeout
        self.stats = BridgeStats()
        self._queue: deque[_Item] = deque()
        self._inflight: deque[_Sent] = deque()
        self._by_n: dict[int, _Sent] = {}
        self._n = 0
        self._prefix = ""
        self._lock = anyio.Lock()
        self._have_items = anyio.Event()
        self._have_acks = anyio.Event()
        self._head_done: anyio.Event | None = None
        self._window: anyio.Event | None = None
        self._space: anyio.Event | None = None
        self._failed: str | None = None
        self._warned = False

    # -- input (the pump) --------------------------------------------------------------------

    @property
    def backlog(self) -> int:
        """Messages queued or in flight (what the bound applies to)."""
        return len(self._queue) + len(self._inflight)

    def offer(self, item: _Item) -> None:
        """Queue one message without waiting; at the bound, the oldest queued one is dropped."""
        queue = self._queue
        if self.backlog >= self.buffer and queue:
            queue.popleft()
            self.stats.dropped += 1
            if not self._warned:
                self._warned = True
                logger.warning(
                    "bridge: NATS is behind the feed, dropping the oldest queued ticks "
                    "(buffer=%d, overflow=drop)",
                    self.buffer,
                )
        queue.append(item)
        self._have_items.set()

    async def put(self, item: _Item) -> None:
        """Queue one message: ``overflow="stall"`` waits for room, ``"drop"`` never waits."""
        if self.overflow == "stall":
            while self.backlog >= self.buffer:
                self._space = anyio.Event()
                await self._space.wait()
        self.offer(item)

    # -- output ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Send and collect acks until cancelled."""
        nc = self._nc
        self._prefix = f"{nc.new_inbox()}."
        sub = await nc.subscribe(f"{self._prefix}*", cb=self._on_ack)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._sender, name="aiofutu-bridge-sender")
                tg.start_soon(self._acker, name="aiofutu-bridge-acker")
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(1):
                try:
                    await sub.unsubscribe()
                except Exception as exc:  # the connection is closed or down
                    logger.debug("bridge: unsubscribing the ack inbox failed: %r", exc)

    async def _sender(self) -> None:
        errors = self._nats.errors
        queue = self._queue
        inflight = self._inflight
        by_n = self._by_n
        publish = self._nc.publish
        prefix = self._prefix
        while True:
            if not queue:
                self._have_items = anyio.Event()
                await self._have_items.wait()
                continue
            room = self.max_pending - len(inflight)
            if room <= 0:
                self._window = anyio.Event()
                await self._window.wait()
                continue
            failed = False
            async with self._lock:  # a batch per lock: the acker's resend takes it too
                for _ in range(min(len(queue), room, _BATCH)):
                    item = queue.popleft()
                    n = self._n = self._n + 1
                    try:  # buffers in nats-py (no yield) unless its pending bytes overflow
                        await publish(item[0], item[1], reply=f"{prefix}{n}", headers=item[2])
                    except (errors.Error, OSError) as exc:
                        queue.appendleft(item)  # not sent: first in line again
                        logger.debug("bridge: publish not possible now (%r); retrying", exc)
                        failed = True
                        break
                    sent = _Sent(n, item)
                    inflight.append(sent)
                    by_n[n] = sent
                self._have_acks.set()
            if failed:
                await anyio.sleep(0.05)
            else:
                await anyio.lowlevel.checkpoint()

    async def _on_ack(self, msg: Any) -> None:
        """One JetStream ack (a callback of nats-py): match it, count the acked head."""
        try:
            sent = self._by_n.pop(int(msg.subject[len(self._prefix) :]), None)
        except ValueError:
            return
        if sent is None:  # an ack of a message sent again since (or a stray reply)
            return
        data = msg.data
        if not data:  # a status without a body: 503 no responders (no stream captures it)
            status = (msg.headers or {}).get("Status", "no response")
            sent.outcome = f"status {status}"
        elif b'"error"' in data:
            sent.outcome = data.decode("utf-8", "replace")
        else:
            sent.outcome = "duplicate" if b'"duplicate":true' in data else "stored"
        inflight = self._inflight
        if inflight and inflight[0] is sent:
            self._count_acked()

    def _count_acked(self) -> None:
        inflight = self._inflight
        stats = self.stats
        while inflight:
            outcome = inflight[0].outcome
            if outcome is None:
                break
            if outcome == "stored":
                stats.published += 1
            elif outcome == "duplicate":
                stats.duplicates += 1
            else:  # the stream refused it: the acker sends everything in flight again
                self._failed = outcome
                break
            inflight.popleft()
        self._released()
        head_done = self._head_done
        if head_done is not None and (not inflight or inflight[0].outcome is not None):
            self._head_done = None
            head_done.set()

    async def _acker(self) -> None:
        """Wait for the oldest ack; when it does not come in time, or the stream refused a
        message, send everything in flight again."""
        inflight = self._inflight
        while True:
            if not inflight:
                self._have_acks = anyio.Event()
                await self._have_acks.wait()
                continue
            head = inflight[0]
            if head.outcome is None:
                self._head_done = done = anyio.Event()
                with anyio.move_on_after(self.ack_timeout):
                    await done.wait()
            if self._failed is not None:
                logger.warning("bridge: JetStream refused a message: %s", self._failed)
                self._failed = None
                await self._resend("the stream refused a message")
            elif inflight and inflight[0] is head and head.outcome is None:
                await self._resend(f"no ack from JetStream within {self.ack_timeout:g}s")

    async def _resend(self, why: str) -> None:
        """Every message in flight goes back to the head of the queue, in order."""
        async with self._lock:
            items = [sent.item for sent in self._inflight]
            self._inflight.clear()
            self._by_n.clear()
            self._queue.extendleft(reversed(items))
            self.stats.resent += len(items)
            if items:
                logger.warning(
                    "bridge: %s; re-sending %d message(s) (de-duplicated by Nats-Msg-Id)",
                    why,
                    len(items),
                )
                self._have_items.set()
            self._released()
        await anyio.sleep(0.1)

    def _released(self) -> None:
        window = self._window
        if window is not None and len(self._inflight) < self.max_pending:
            self._window = None
            window.set()
        space = self._space
        if space is not None and self.backlog < self.buffer:
            self._space = None
            space.set()
        if self._warned and self.backlog < self.buffer // 2:
            self._warned = False

    def snapshot(self) -> BridgeStats:
        """The counters now."""
        stats = self.stats
        stats.pending_acks = len(self._inflight)
        stats.queued = len(self._queue)
        stats.nats_connected = bool(self._nc.is_connected)
        return stats

    async def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until everything queued is acknowledged."""
        with anyio.move_on_after(timeout):
            while self.backlog:  # noqa: ASYNC110  # polling the counters the tasks move
                await anyio.sleep(0.01)
            return True
        return False
