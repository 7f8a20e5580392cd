"""The bridge: OpenD ticker streams in, JetStream messages out, with a declared overflow policy.

The **pump** reads the client's ticker stream (its own bounded buffer) and appends encoded
messages to the bounded publish queue (``buffer``) of a :class:`~._jetstream.Publisher`,
dropping the oldest and counting them when it is full (``overflow="drop"``) or waiting for room
(``overflow="stall"``: the ticker stream then fills and holds OpenD's pushes back, losing
nothing). The publisher sends with at most ``max_pending`` acks in flight and re-sends what
JetStream did not acknowledge (see :mod:`._jetstream`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import re
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from ..codes import parse_code
from ..enums import Market
from ..errors import ConfigurationError, FutuError
from . import _subjects
from ._buskinds import BusKind, bus_kinds
from ._items import pump_items, served_codes
from ._jetstream import (
    DEFAULT_BUFFER,
    DEFAULT_MAX_PENDING,
    BridgeOverflow,
    BridgeStats,
    Publisher,
)
from ._nats import connect_nats, import_nats, is_connection, require_asyncio

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from ..client import Client
    from ..models import Ticker
    from ..streams import Overflow

__all__ = ("BridgeStats", "Publisher", "ensure_stream", "parse_duration", "run")

logger = logging.getLogger("aiofutu.bridge")

_LOW32 = 0xFFFFFFFF
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


async def last_item(nc: Any, stream: str, subj: str) -> tuple[str, str] | None:
    """(Nats-Msg-Id, Futu-Digest) of the last state or series message on ``subj``, or None
    (also when NATS cannot say now: the chain then starts afresh, a copy at worst)."""
    nats = import_nats()
    try:
        msg = await nc.jetstream().get_last_msg(stream, subj)
    except nats.js.errors.NotFoundError:
        return None
    except (nats.errors.Error, OSError, TimeoutError) as exc:
        logger.warning(
            "bridge: cannot read the last message on %s (%r); chaining afresh", subj, exc
        )
        return None
    hdrs = msg.headers or {}
    ident, content = hdrs.get(_subjects.MSG_ID), hdrs.get(_subjects.HEADER_DIGEST)
    if not (isinstance(ident, str) and isinstance(content, str)):
        return None
    return ident, content


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


def _check_kinds(kinds: Iterable[str] | str) -> tuple[BusKind, ...]:
    items = [kinds] if isinstance(kinds, str) else list(kinds)
    known = bus_kinds()
    for kind in items:
        if kind not in known:
            raise ConfigurationError(
                f"kind {kind!r} is not a bus kind; bus kinds: {', '.join(known)}"
            )
    if not items:
        raise ConfigurationError("kinds must name at least one kind")
    return tuple(known[k] for k in dict.fromkeys(items))


class Bridge:
    """A running bridge (handed out by ``task_status`` of :func:`run`): its counters."""

    def __init__(self, publisher: Publisher, ticks: Any = None, streams: Any = ()) -> None:
        self.publisher = publisher
        self._ticks = ticks
        self._streams = [s for s in (ticks, *streams) if s is not None]

    def stats(self) -> BridgeStats:
        """The counters now: ``dropped`` includes items the direct streams themselves dropped,
        ``queued`` those they hold that the pumps have not taken yet."""
        stats = dataclasses.replace(self.publisher.snapshot(), extra={})
        for stream in self._streams:
            stats.dropped += stream.dropped
            stats.queued += stream.pending
        return stats


def _stopped(bridge: Bridge, on_stop: Callable[[BridgeStats], None] | None) -> None:
    """The last word of a bridge: what it published, and what it did not (counted)."""
    stats = bridge.stats()
    if on_stop is not None:
        try:
            on_stop(stats)
        except Exception:
            logger.exception("on_stop callback failed")
        return
    if stats.unpublished:
        logger.warning(
            "bridge: stopped with %d tick(s) not published (%d queued, never sent; %d sent "
            "without an ack, the stream may hold them); %s",
            stats.unpublished,
            stats.queued,
            stats.pending_acks,
            stats.line(),
        )
    else:
        logger.info("bridge: stopped, everything taken from OpenD is stored; %s", stats.line())


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
    on_stop: Callable[[BridgeStats], None] | None = None,
    task_status: anyio.abc.TaskStatus[Bridge] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Publish every tick of ``codes`` from ``client`` to JetStream until cancelled.

    ``client`` should be connected with ``reconnect=`` on (a ReconnectPolicy): across an OpenD
    outage the client itself backfills its stream. ``nats`` is a ``nats://`` URL (connected
    here, reconnecting forever) or a nats-py connection (left open). At startup, for each
    subject, the bridge reads the last message the stream holds and publishes OpenD's recent
    ticks (``get_rt_ticker``) that come after it, so a restart after any outage stores no
    duplicate and loses nothing OpenD still keeps. asyncio only (nats-py).

    Cancelled (SIGTERM, Ctrl-C), it stops at once, NATS up or down, and says what it did not
    publish: ``on_stop`` gets the last :class:`BridgeStats` (``unpublished``: ticks queued or
    sent without an ack), else a warning is logged when that is not 0.
    """
    require_asyncio("aiofutu.bridge.run")
    import_nats()
    code_list = _check_codes(codes)
    kind_list = _check_kinds(kinds)  # the table of kinds decides what is accepted
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
        direct_buffer = max(buffer, 10_000)
        direct_overflow: Overflow = "block" if overflow == "stall" else "drop_oldest"
        async with contextlib.AsyncExitStack() as streams:
            ticks = None
            if any(k.shape == "tape" for k in kind_list):
                ticks = await streams.enter_async_context(
                    client.ticker_stream(
                        *code_list,
                        buffer=direct_buffer,
                        overflow=direct_overflow,
                        is_first_push=False,
                    )
                )
            others: list[tuple[BusKind, Any]] = []
            for kind in kind_list:
                served = served_codes(kind, code_list)
                if kind.open is None or not served:
                    continue
                opened = kind.open(client, served, direct_buffer, direct_overflow)
                others.append((kind, await streams.enter_async_context(opened)))
            bridge = Bridge(publisher, ticks, [s for _, s in others])
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(publisher.run, name="aiofutu-bridge-publisher")
                    last = functools.partial(last_item, nc, stream)
                    for kind, items in others:
                        tg.start_soon(pump_items, kind, items, publisher, last, name=kind.token)
                    newest = (
                        await _backfill(client, nc, publisher, stream, code_list)
                        if ticks is not None
                        else {}
                    )
                    if stats_interval is not None or on_stats is not None:
                        tg.start_soon(_report, bridge, stats_interval or 10.0, on_stats)
                    task_status.started(bridge)
                    logger.info(
                        "bridge: publishing %s of %s to stream %s",
                        ",".join(k.token for k in kind_list),
                        ", ".join(code_list),
                        stream,
                    )
                    if ticks is not None:
                        await _pump(ticks, publisher, newest)
                    else:
                        await anyio.sleep_forever()
            finally:
                _stopped(bridge, on_stop)  # while the direct streams still count their backlog
    finally:
        if own:
            with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                try:
                    await nc.close()
                except Exception as exc:  # NATS is down: nothing left to flush to
                    logger.debug("bridge: closing the NATS connection: %r", exc)


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
