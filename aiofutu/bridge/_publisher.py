"""The bridge: OpenD ticker streams in, JetStream messages out, with a declared overflow policy.

Three tasks per bridge, none of which ever blocks the OpenD reader:

* the **pump** reads the client's ticker stream (its own bounded buffer) and appends encoded
  messages to the bounded publish queue (``buffer``), dropping the oldest and counting them
  when it is full (``overflow="drop"``) or waiting for room (``overflow="stall"``: the ticker
  stream then fills and holds OpenD's pushes back, losing nothing);
* the **sender** publishes from the queue with nats-py's async publish, at most
  ``max_pending`` acks in flight;
* the **acker** takes the acks in publish order. When one does not come in ``ack_timeout``
  (the broker is down or slow), every unacknowledged message goes back to the head of the
  queue, in order, and is sent again: JetStream's de-duplication by ``Nats-Msg-Id`` stores
  each one once, and per subject the stream keeps the tape order.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.abc
import anyio.lowlevel

from ..codes import parse_code
from ..enums import Market
from ..errors import ConfigurationError, FutuError
from . import _subjects
from ._nats import connect_nats, import_nats, is_connection, require_asyncio

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from ..client import Client
    from ..models import Ticker

__all__ = ("BridgeStats", "Publisher", "ensure_stream", "parse_duration", "run")

logger = logging.getLogger("aiofutu.bridge")

BridgeOverflow = Literal["drop", "stall"]
_LOW32 = 0xFFFFFFFF
DEFAULT_BUFFER = 200_000
DEFAULT_MAX_PENDING = 4_000
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)


def parse_duration(text: str | float) -> float:
    """``"7d"``, ``"2m"``, ``"500ms"``, ``"30"`` (seconds) or a number -> seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        match = _DURATION.match(str(text))
        if match is None:
            raise ConfigurationError(f"not a duration: {text!r} (e.g. 500ms, 30s, 2m, 7d)")
        value = float(match[1]) * _UNITS[match[2]]
    if not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"a duration must be finite and >= 0, got {text!r}")
    return value


def parse_size(text: str | int) -> int:
    """``"1GB"``, ``"512MiB"``, ``"100k"``, ``"-1"`` (unlimited) or an int -> bytes."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    if str(text).strip() == "-1":
        return -1
    match = _SIZE.match(str(text))
    if match is None:
        raise ConfigurationError(f"not a size: {text!r} (e.g. 512MB, 10GiB, -1 for no limit)")
    unit = (match[2] or "b").lower()[0]
    return int(match[1]) * {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[unit]


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

    def line(self) -> str:
        """One line for logs and ``--stats``."""
        return (
            f"published={self.published} duplicates={self.duplicates} "
            f"pending_acks={self.pending_acks} dropped={self.dropped} queued={self.queued} "
            f"resent={self.resent} skipped={self.skipped} "
            f"nats={'up' if self.nats_connected else 'down'}"
        )


_Item = tuple[str, bytes, dict[str, str]]


class Publisher:
    """A bounded, pipelined JetStream publisher with go-back-N resend on a missing ack."""

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
        self._js = nc.jetstream(publish_async_max_pending=max_pending)
        self.stream = stream
        self.buffer = buffer
        self.overflow: BridgeOverflow = overflow
        self.ack_timeout = ack_timeout
        self.stats = BridgeStats()
        self._queue: deque[_Item] = deque()
        self._inflight: deque[tuple[_Item, Any]] = deque()
        self._lock = anyio.Lock()
        self._have_items = anyio.Event()
        self._have_acks = anyio.Event()
        self._space: anyio.Event | None = None
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
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._sender, name="aiofutu-bridge-sender")
            tg.start_soon(self._acker, name="aiofutu-bridge-acker")

    async def _sender(self) -> None:
        errors = self._nats.errors
        js_errors = self._nats.js.errors
        queue = self._queue
        inflight = self._inflight
        publish = self._js.publish_async
        while True:
            if not queue:
                self._have_items = anyio.Event()
                await self._have_items.wait()
                continue
            failed = False
            async with self._lock:  # a batch per lock: the acker's resend takes it too
                for _ in range(min(len(queue), 512)):
                    item = queue.popleft()
                    try:
                        future = await publish(
                            item[0], item[1], headers=item[2], wait_stall=self.ack_timeout
                        )
                    except (js_errors.TooManyStalledMsgsError, errors.Error, OSError) as exc:
                        queue.appendleft(item)  # not sent: first in line again
                        logger.debug("bridge: publish not possible now (%r); retrying", exc)
                        failed = True
                        break
                    inflight.append((item, future))
                self._have_acks.set()
            if failed:
                await anyio.sleep(0.05)
            else:
                await anyio.lowlevel.checkpoint()

    async def _acker(self) -> None:
        """Count acks in publish order; a missing or failed one sends everything in flight
        again. Acks that are already in cost no wait: only the oldest pending one is awaited."""
        import asyncio

        inflight = self._inflight
        stats = self.stats
        while True:
            if not inflight:
                self._have_acks = anyio.Event()
                await self._have_acks.wait()
                continue
            head = inflight[0][1]
            if not head.done():
                with anyio.move_on_after(self.ack_timeout):
                    await asyncio.wait((head,))
            failed = False
            while inflight and inflight[0][1].done():
                item, future = inflight[0]
                if future.cancelled() or future.exception() is not None:
                    exc = None if future.cancelled() else future.exception()
                    logger.debug("bridge: publish of %s failed: %r", item[0], exc)
                    failed = True
                    break
                inflight.popleft()
                if future.result().duplicate:
                    stats.duplicates += 1
                else:
                    stats.published += 1
            self._released()
            if failed or (inflight and inflight[0][1] is head and not head.done()):
                await self._resend()

    async def _resend(self) -> None:
        """No ack in time: every message in flight goes back to the head of the queue."""
        async with self._lock:
            items = [item for item, _ in self._inflight]
            for _, future in self._inflight:
                if not future.done():
                    future.cancel()
            self._inflight.clear()
            self._queue.extendleft(reversed(items))
            self.stats.resent += len(items)
            if items:
                logger.warning(
                    "bridge: no ack from JetStream within %gs; re-sending %d message(s) "
                    "(de-duplicated by Nats-Msg-Id)",
                    self.ack_timeout,
                    len(items),
                )
                self._have_items.set()
        await anyio.sleep(0.1)

    def _released(self) -> None:
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


async def ensure_stream(
    nc: Any,
    name: str,
    *,
    max_age: float,
    max_bytes: int,
    replicas: int,
    duplicate_window: float,
) -> Any:
    """Create the stream (subjects ``futu.>``, file storage) or check the one that exists.

    An existing stream must capture ``futu.>``; a different duplicate window is updated (the
    window is the bridge's de-duplication contract), other differences are only logged.
    """
    nats = import_nats()
    api = nats.js.api
    js = nc.jetstream()
    wanted = f"{_subjects.SUBJECT_ROOT}.>"
    try:
        info = await js.stream_info(name)
    except nats.js.errors.NotFoundError:
        info = None
    if info is None:
        config = api.StreamConfig(
            name=name,
            subjects=[wanted],
            storage=api.StorageType.FILE,
            retention=api.RetentionPolicy.LIMITS,
            max_age=max_age or None,
            max_bytes=max_bytes,
            num_replicas=replicas,
            duplicate_window=duplicate_window,
            allow_direct=True,
        )
        try:
            info = await js.add_stream(config)
            logger.info("bridge: created stream %s (%s)", name, wanted)
            return info
        except nats.js.errors.BadRequestError:  # created meanwhile by another bridge
            info = await js.stream_info(name)
    config = info.config
    if wanted not in (config.subjects or []):
        raise ConfigurationError(
            f"stream {name!r} exists but does not capture {wanted!r} (subjects "
            f"{config.subjects}); use another --stream name or add the subject"
        )
    if abs((config.duplicate_window or 0) - duplicate_window) > 1e-3:
        logger.warning(
            "bridge: stream %s has a duplicate window of %gs; setting it to %gs",
            name,
            config.duplicate_window or 0,
            duplicate_window,
        )
        config.duplicate_window = duplicate_window
        info = await js.update_stream(config)
    return info


async def last_stored(nc: Any, stream: str, subj: str) -> tuple[int, str] | None:
    """(sequence, Nats-Msg-Id) of the last message stored on ``subj``, or None."""
    nats = import_nats()
    js = nc.jetstream()
    try:
        msg = await js.get_last_msg(stream, subj)
    except nats.js.errors.NotFoundError:
        return None
    hdrs = msg.headers or {}
    try:
        return int(hdrs[_subjects.HEADER_SEQUENCE]), str(hdrs.get(_subjects.MSG_ID, ""))
    except (KeyError, ValueError):
        logger.warning("bridge: last message on %s has no valid %s header", subj, "sequence")
        return None


def _check_codes(codes: Iterable[str] | str) -> tuple[str, ...]:
    items = [codes] if isinstance(codes, str) else list(codes)
    if not items:
        raise ConfigurationError("codes must name at least one security code")
    out: list[str] = []
    for code in items:
        parse_code(code)
        if code not in out:
            out.append(code)
    return tuple(out)


def _check_kinds(kinds: Iterable[str] | str) -> tuple[str, ...]:
    items = [kinds] if isinstance(kinds, str) else list(kinds)
    for kind in items:
        if kind not in _subjects.KINDS:
            raise ConfigurationError(
                f"kind {kind!r} is not bridged (yet); bridged kinds: {', '.join(_subjects.KINDS)}"
            )
    if not items:
        raise ConfigurationError("kinds must name at least one kind")
    return tuple(dict.fromkeys(items))


class Bridge:
    """A running bridge (handed out by ``task_status`` of :func:`run`): its counters."""

    def __init__(self, publisher: Publisher, stream_dropped: Callable[[], int]) -> None:
        self.publisher = publisher
        self._stream_dropped = stream_dropped

    def stats(self) -> BridgeStats:
        """The counters now (``dropped`` includes ticks the ticker stream itself dropped)."""
        stats = dataclasses.replace(self.publisher.snapshot(), extra={})
        stats.dropped += self._stream_dropped()
        return stats


async def run(
    client: Client,
    nats: str | Any,
    *,
    codes: Iterable[str] | str,
    kinds: Iterable[str] | str = ("ticker",),
    stream: str = "FUTU",
    max_age: float | str = "7d",
    max_bytes: int | str = -1,
    replicas: int = 1,
    duplicate_window: float | str = "2m",
    overflow: BridgeOverflow = "drop",
    buffer: int = DEFAULT_BUFFER,
    max_pending: int = DEFAULT_MAX_PENDING,
    ack_timeout: float = 2.0,
    stats_interval: float | None = None,
    on_stats: Callable[[BridgeStats], None] | None = None,
    task_status: anyio.abc.TaskStatus[Bridge] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Publish every tick of ``codes`` from ``client`` to JetStream until cancelled.

    ``client`` should be connected with ``reconnect=`` on (a ReconnectPolicy): across an OpenD
    outage the client itself backfills its stream. ``nats`` is a ``nats://`` URL (connected
    here, reconnecting forever) or a nats-py connection (left open). At startup, for each
    subject, the bridge reads the last message the stream holds and publishes OpenD's recent
    ticks (``get_rt_ticker``) that come after it, so a restart after any outage stores no
    duplicate and loses nothing OpenD still keeps. asyncio only (nats-py).
    """
    require_asyncio("aiofutu.bridge.run")
    import_nats()
    code_list = _check_codes(codes)
    _check_kinds(kinds)  # only ticker is wired: the table decides what is accepted
    window = parse_duration(duplicate_window)
    if window <= 0:
        raise ConfigurationError("duplicate_window must be > 0")
    age = parse_duration(max_age)
    size = parse_size(max_bytes)
    if type(replicas) is not int or not 1 <= replicas <= 5:
        raise ConfigurationError(f"replicas must be an int in 1..5, got {replicas!r}")
    if stats_interval is not None and not stats_interval > 0:
        raise ConfigurationError(f"stats_interval must be > 0 seconds, got {stats_interval!r}")
    own = not is_connection(nats)
    nc: Any = await connect_nats(nats, "aiofutu-bridge") if own else nats
    try:
        await ensure_stream(
            nc, stream, max_age=age, max_bytes=size, replicas=replicas, duplicate_window=window
        )
        publisher = Publisher(
            nc,
            stream=stream,
            buffer=buffer,
            overflow=overflow,
            max_pending=max_pending,
            ack_timeout=ack_timeout,
        )
        async with client.ticker_stream(
            *code_list,
            buffer=max(buffer, 10_000),
            overflow="block" if overflow == "stall" else "drop_oldest",
            is_first_push=False,
        ) as ticks:
            bridge = Bridge(publisher, lambda: ticks.dropped)
            async with anyio.create_task_group() as tg:
                tg.start_soon(publisher.run, name="aiofutu-bridge-publisher")
                newest = await _backfill(client, nc, publisher, stream, code_list)
                if stats_interval is not None or on_stats is not None:
                    tg.start_soon(_report, bridge, stats_interval or 10.0, on_stats)
                task_status.started(bridge)
                logger.info("bridge: publishing %s to stream %s", ", ".join(code_list), stream)
                await _pump(ticks, publisher, newest)
    finally:
        if own:
            with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                await nc.close()


async def _backfill(
    client: Client, nc: Any, publisher: Publisher, stream: str, codes: tuple[str, ...]
) -> dict[str, tuple[int, set[str]]]:
    """Publish OpenD's recent ticks that the stream does not hold yet.

    Returns, by code, the newest sequence sent and the msg ids of the ticks sent at it (trades
    of one second may share a US sequence: the live stream's ticks at that sequence that are
    not among them are newer).

    The stream is asked per subject what it holds last (a direct get of the last message), so
    this is right after an outage longer than the duplicate window too. Of the ticks with the
    same sequence as the last stored one (two trades of one second may share a US sequence),
    those after the stored one are sent, those up to it are not; if it is not among them, all
    are sent (the stream drops a copy by its msg id).
    """
    newest: dict[str, tuple[int, set[str]]] = {}
    for code in codes:
        subj = _subjects.subject("ticker", code)
        stored = await last_stored(nc, stream, subj)
        try:
            recent = await client.get_rt_ticker(code, 1000)
        except FutuError as exc:
            logger.warning("bridge: no backfill for %s: %s", code, exc)
            recent = []
        last_seq, last_id = stored if stored is not None else (-1, "")
        start = _first_unstored(recent, last_seq, last_id)
        publisher.stats.skipped += start
        sent = 0
        for tick in recent[start:]:
            if sent == 0 and last_seq >= 0:
                _report_hole(code, last_seq, tick.sequence)
            await publisher.put(
                (subj, _subjects.encode_ticker(tick), _subjects.headers("ticker", tick))
            )
            sent += 1
        if recent:
            top = recent[-1].sequence
            ids = {_subjects.ticker_msg_id(t) for t in recent if t.sequence == top}
            newest[code] = (top, ids)
        logger.info(
            "bridge: %s: stream holds up to sequence %s; backfilled %d tick(s) from OpenD",
            code,
            last_seq if last_seq >= 0 else "nothing",
            sent,
        )
    return newest


def _first_unstored(recent: list[Ticker], last_seq: int, last_id: str) -> int:
    """The index in ``recent`` (oldest first) of the first tick after the last one stored."""
    start = next((i for i, t in enumerate(recent) if t.sequence >= last_seq), len(recent))
    for i in range(start, len(recent)):
        tick = recent[i]
        if tick.sequence != last_seq:
            break
        if _subjects.ticker_msg_id(tick) == last_id:
            return i + 1
    return start


def _report_hole(code: str, stored: int, first: int) -> None:
    market, _ = parse_code(code)
    if market is Market.HK:
        step = ((first & _LOW32) - (stored & _LOW32)) & _LOW32
        if 1 < step < 0x80000000:
            logger.warning(
                "bridge: %s: %d tick(s) between sequences %d (stored) and %d (the oldest OpenD "
                "still keeps) are lost to the stream",
                code,
                step - 1,
                stored,
                first,
            )


async def _pump(ticks: Any, publisher: Publisher, newest: dict[str, tuple[int, set[str]]]) -> None:
    """Ticker stream -> publish queue; ticks the backfill already sent are skipped (below its
    newest sequence, or at it with the msg id of one it sent)."""
    encode = _subjects.encode_ticker
    make_headers = _subjects.headers
    subject_of: dict[str, str] = {}
    put = publisher.put
    offer = publisher.offer
    stall = publisher.overflow == "stall"
    tick: Ticker
    async for tick in ticks:
        code = tick.code
        if newest:
            floor = newest.get(code)
            if floor is not None:
                seq = tick.sequence
                if seq < floor[0] or (
                    seq == floor[0] and _subjects.ticker_msg_id(tick) in floor[1]
                ):
                    continue
                if seq > floor[0]:
                    del newest[code]
        subj = subject_of.get(code)
        if subj is None:
            subj = subject_of[code] = _subjects.subject("ticker", code)
        item = (subj, encode(tick), make_headers("ticker", tick))
        if stall:
            await put(item)
        else:
            offer(item)


async def _report(
    bridge: Bridge, interval: float, on_stats: Callable[[BridgeStats], None] | None
) -> None:
    while True:
        await anyio.sleep(interval)
        stats = bridge.stats()
        logger.info("bridge: %s", stats.line())
        if on_stats is not None:
            on_stats(stats)
