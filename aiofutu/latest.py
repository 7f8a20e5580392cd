"""State streams: the newest quote, order book or broker queue per security.

A tape (tickers) must deliver every item once, in order; a state only matters as its newest
value. So a :class:`LatestStream` **conflates per security** by default: while the consumer is
busy, a newer update of a security replaces the one still waiting (``conflated`` counts the
replaced ones), and the consumer always gets the newest state, never a stale backlog. With
``conflate=False`` it delivers every update through a bounded buffer with the same overflow
policies as ticker streams (``"raise"``, ``"drop_oldest"``, ``"block"``).

The router (:mod:`aiofutu.quotes._state_router`) runs in the reader and hands the stream a
:class:`StateUpdate` per security and push: the parsed message, decoded into its model only
when a consumer takes it (once, for all the streams of that security). A conflated update is
never decoded at all.

After a reconnect, the client re-subscribes with OpenD's first push, which re-sends the current
state; that fresh state comes before any later update, and the stream counts it in
``resynced``. Between the link loss and that state, the security is in ``stale``.
"""

from __future__ import annotations

import logging
import sys
from collections import deque
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio
import anyio.lowlevel

from .errors import SlowConsumer
from .streams import _Bounded, _check_buffer, _check_overflow

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover
    from typing_extensions import Self

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._routing import Attacher
    from .streams import Overflow

__all__ = ("LatestStream", "StateUpdate")

logger = logging.getLogger("aiofutu.streams")

_T = TypeVar("_T")
#: updates an ``async for`` may take in a row before it yields to the event loop once
_STREAK = 256


class StateUpdate:
    """One security's new state from one push: the message, decoded on first :meth:`get`.

    ``key`` is the route, ``(market, code, variant)``; ``code`` the full code (``HK.00700``).
    """

    __slots__ = ("_decode", "_model", "_pb", "code", "key")

    def __init__(
        self, key: tuple[int, str, int], code: str, pb: Any, decode: Callable[[Any], Any]
    ) -> None:
        self.key = key
        self.code = code
        self._pb = pb
        self._decode = decode
        self._model: Any = None

    def get(self) -> Any:
        """The model (decoded once, shared by every stream of the security)."""
        model = self._model
        if model is None:
            model = self._model = self._decode(self._pb)
        return model

    def message(self) -> Any:
        """The parsed push message the model is decoded from (kept: the bridge publishes it)."""
        return self._pb


class _Hole:
    """``overflow="raise"``: updates lost here; the consumer is told when it reaches this."""

    __slots__ = ("lost",)

    def __init__(self, lost: int) -> None:
        self.lost = lost


class LatestStream(_Bounded, Generic[_T]):
    """``async for state in stream``: the states of one or more securities, newest first-come.

    ``conflate=True`` (the default): at most one update per security waits for the consumer;
    a newer one replaces it in place (``conflated`` counts those replaced), so the consumer
    always gets the newest state of each security, in the order the securities first changed.
    It never overflows, and ``buffer``/``overflow`` are not used.

    ``conflate=False``: every update, in arrival order, through a buffer of ``buffer`` updates
    with ticker streams' overflow policies: ``"raise"`` (the updates before the loss are
    delivered, then :class:`~aiofutu.SlowConsumer` with the number lost, then the later ones),
    ``"drop_oldest"``, or ``"block"`` (the reader waits; every other stream waits with it).

    Counters: ``received`` (updates that reached the stream), ``conflated``, ``dropped``
    (lost to overflow), ``pending`` (waiting), ``resynced`` (fresh states after a reconnect),
    ``bad_updates`` (updates whose message could not be decoded: logged and skipped).
    ``received == consumed + pending + conflated + dropped + bad_updates``.

    ``stale`` is the set of codes whose state may be old: from a link loss until the fresh
    state OpenD re-sends after the reconnect (OpenD sends none for a security it has no data
    for; such a code stays stale until its next update).

    A stream that joins a security another stream already follows gets that security's latest
    state at once; otherwise the client subscribes it with OpenD's first push, which sends the
    current state.
    """

    wants_models = True

    def __init__(
        self,
        attacher: Attacher,
        codes: tuple[str, ...],
        *,
        kind: str,
        variant: int = 0,
        conflate: bool = True,
        buffer: int = 1_000,
        overflow: Overflow = "raise",
    ) -> None:
        super().__init__(attacher, codes, _check_buffer(buffer), _check_overflow(overflow), None)
        #: the quote kind's name (``"quote"``, ``"order_book"``, ``"broker"``)
        self.kind = kind
        #: the route variant: the order book's type (0 normal, 1 odd lot); 0 for other kinds
        self.variant = variant
        self.conflate = bool(conflate)
        self.conflated = 0
        self.resynced = 0
        self.bad_updates = 0
        self._stale: set[str] = set()
        #: conflate=True: the waiting update per route, in the order the routes changed
        self._latest: dict[tuple[int, str, int], StateUpdate] = {}
        #: conflate=False: updates and holes in arrival order
        self._queue: deque[StateUpdate | _Hole] = deque()
        self._queued = 0  # updates in ``_queue`` (holes not counted)
        self._streak = 0

    @property
    def stale(self) -> frozenset[str]:
        """Codes whose state may be old (link lost, fresh state not yet received)."""
        return frozenset(self._stale)

    @property
    def pending(self) -> int:
        """Updates waiting for the consumer."""
        return len(self._latest) + self._queued

    def _is_full(self) -> bool:
        return not self.conflate and self._queued >= self.buffer

    def _mark_stale(self, code: str) -> None:
        self._stale.add(code)

    def _resynced(self, code: str) -> None:
        self.resynced += 1
        self._stale.discard(code)

    def _put_models(self, items: list[StateUpdate]) -> None:
        self.received += len(items)
        if self.conflate:
            latest = self._latest
            for item in items:
                if item.key in latest:
                    self.conflated += 1
                latest[item.key] = item
        else:
            self._enqueue(items)
        wake = self._wake
        if wake is not None:
            self._wake = None
            wake.set()

    def _enqueue(self, items: list[StateUpdate]) -> None:
        queue = self._queue
        overflow = self.overflow
        for item in items:
            if self._queued < self.buffer or overflow == "block":
                queue.append(item)
                self._queued += 1
            elif overflow == "drop_oldest":
                while queue:
                    old = queue.popleft()
                    if type(old) is not _Hole:
                        self._queued -= 1
                        break
                queue.append(item)
                self._queued += 1
                self._overflowed(1)
            else:  # "raise": the consumer meets a hole at this point
                tail = queue[-1] if queue else None
                if type(tail) is _Hole:
                    tail.lost += 1
                else:
                    queue.append(_Hole(1))
                self._overflowed(1)

    def _overflowed(self, lost: int) -> None:
        self.dropped += lost
        if not self._warned:
            self._warned = True
            logger.warning(
                "%s stream on %s: consumer is behind, %d update(s) dropped (buffer=%d, "
                "overflow=%s; conflate=True keeps only the newest state instead)",
                self.kind,
                ",".join(self.codes),
                lost,
                self.buffer,
                self.overflow,
            )

    def _put_raw(self, code: str, data: Any) -> None:
        raise AssertionError("LatestStream takes state updates")  # pragma: no cover

    def _take(self) -> StateUpdate | None:
        """The next waiting update, or ``None``; raises at a hole (``overflow="raise"``)."""
        if self.conflate:
            latest = self._latest
            if not latest:
                return None
            return latest.pop(next(iter(latest)))
        queue = self._queue
        if not queue:
            return None
        item = queue.popleft()
        if isinstance(item, _Hole):
            self._warned = False
            raise SlowConsumer(item.lost, codes=self.codes)
        self._queued -= 1
        if self._space is not None:
            self._released()
        return item

    def _model(self, item: StateUpdate) -> Any:
        try:
            return item.get()
        except Exception:
            self.bad_updates += 1
            logger.exception("dropped a %s update of %s that does not decode", self.kind, item.code)
            return None

    async def __anext__(self) -> _T:
        while True:
            if self._latest or self._queued:
                self._streak += 1
                if self._streak >= _STREAK:
                    # A long run of ready updates: let the loop run once, before taking one
                    # (so that a cancellation here loses nothing).
                    self._streak = 0
                    await anyio.lowlevel.checkpoint()
                    continue
            item = self._take()
            if item is not None:
                model = self._model(item)
                if model is not None:
                    return model  # type: ignore[no-any-return]
                continue
            if self._ended or self._closed:
                self._raise_end()
            if not self._attached:
                await self.start()
                continue
            self._warned = False  # caught up: the next overflow is a new episode
            self._streak = 0
            await self._wait()

    def drain(self) -> list[_T]:
        """Every waiting state now, without waiting (conflated: one per security).

        Raises like iteration: :class:`~aiofutu.SlowConsumer` when a hole comes first (the
        next call returns what follows it), and the end of the stream once nothing is left.
        """
        out: list[_T] = []
        while True:
            if out and not self.conflate and self._queue and type(self._queue[0]) is _Hole:
                break  # the hole is raised by the next call
            item = self._take()
            if item is None:
                break
            model = self._model(item)
            if model is not None:
                out.append(model)
        if not out and (self._ended or self._closed):
            self._raise_end()
        return out

    def __aiter__(self) -> Self:
        return self
