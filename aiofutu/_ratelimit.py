"""OpenD's request-rate limits, kept by the client: a sliding window per protocol that waits.

OpenD refuses the (n+1)-th request of a limited protocol made within 30 s of the first
(``n per 30 s``, a sliding window). The client keeps one :class:`RateLimiter` shared by all its
tasks and applies it in its request path by protocol id, from :data:`OPEND_LIMITS`: a request
over the limit waits for a free slot instead of failing. The caller's timeout bounds the wait:
when the slot frees up later than the request's deadline, :class:`~aiofutu.errors.RateLimited`
is raised at once (nothing is sent); cancelling a waiting request leaves the limiter as it was.

Which requests count is the protocol's rule: for 3103 (history K-lines) only a first page
(no ``nextReqKey``) counts, for 3203 (snapshots) and 3223 (market state) every request.
:class:`SlidingWindow` is the pure part (a clock is passed in), tested with a fake clock.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio

from ._pb import qot_request_history_kl_pb2
from .errors import ConfigurationError, RateLimited

__all__ = ("OPEND_LIMITS", "Limit", "RateLimiter", "SlidingWindow", "counts")

#: Seconds added to each window: the simulator or OpenD stamps a request when it arrives,
#: a little after the client let it go, so a window is kept slightly longer than it is.
MARGIN = 0.2


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``count`` counted requests in any ``window`` seconds."""

    count: int
    window: float

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ConfigurationError(
                f"a rate limit's count must be an int >= 1, not {self.count!r}"
            )
        if (
            isinstance(self.window, bool)
            or not isinstance(self.window, (int, float))
            or not 0 < self.window < math.inf
        ):
            raise ConfigurationError(
                f"a rate limit's window must be a positive number of seconds, not {self.window!r}"
            )


#: OpenD's documented limits by protocol id: 3103 history K-lines (first pages), 3203
#: snapshots, 3223 market state.
OPEND_LIMITS: Mapping[int, Limit] = {
    3103: Limit(60, 30.0),
    3203: Limit(60, 30.0),
    3223: Limit(10, 30.0),
}


def _history_first_page(message: Any) -> bool:
    """Whether a 3103 request (message or encoded body) asks for a first page."""
    if isinstance(message, (bytes, bytearray)):
        req = qot_request_history_kl_pb2.Request()
        try:
            req.ParseFromString(bytes(message))
        except Exception:  # not ours to judge: count it
            return True
        message = req
    try:
        return not message.c2s.HasField("nextReqKey")
    except (AttributeError, ValueError):
        return True


#: Which requests of a protocol count against its limit (default: every one).
_COUNTS: dict[int, Callable[[Any], bool]] = {3103: _history_first_page}


def counts(proto_id: int, message: Any) -> bool:
    """Whether this request of ``proto_id`` counts against the protocol's limit."""
    rule = _COUNTS.get(proto_id)
    return True if rule is None else rule(message)


class SlidingWindow:
    """The times of the latest ``limit.count`` counted requests; pure (``now`` is passed in)."""

    __slots__ = ("_times", "limit", "margin")

    def __init__(self, limit: Limit, margin: float = MARGIN) -> None:
        self.limit = limit
        self.margin = margin
        self._times: deque[float] = deque(maxlen=limit.count)

    def delay(self, now: float) -> float:
        """Seconds from ``now`` until a request may go (0: at once)."""
        if len(self._times) < self.limit.count:
            return 0.0
        return max(self._times[0] + self.limit.window + self.margin - now, 0.0)

    def take(self, now: float) -> None:
        """Count a request made at ``now``."""
        self._times.append(now)


class RateLimiter:
    """Per-protocol sliding windows shared by every task of one client; waits, never fails.

    ``limits`` maps protocol ids to :class:`Limit`; ``clock`` and ``sleep`` are injectable (tests
    pass a fake clock). Waiting tasks go through in arrival order (one lock per protocol).
    """

    def __init__(
        self,
        limits: Mapping[int, Limit] = OPEND_LIMITS,
        *,
        margin: float = MARGIN,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = anyio.sleep,
    ) -> None:
        self.limits = dict(limits)
        self._windows = {p: SlidingWindow(lim, margin) for p, lim in self.limits.items()}
        self._locks: dict[int, anyio.Lock] = {}
        self._clock = clock
        self._sleep = sleep
        self.waits = 0
        self.wait_seconds = 0.0
        self.last_wait_seconds = 0.0
        self.waiting = 0

    def applies(self, proto_id: int, message: Any) -> bool:
        """Whether a request must pass through :meth:`acquire`."""
        return proto_id in self._windows and counts(proto_id, message)

    async def acquire(self, proto_id: int, timeout: float | None = None) -> float:
        """Wait for a slot of ``proto_id`` and take it; returns the seconds waited.

        Raises :class:`~aiofutu.errors.RateLimited` (without waiting) when the slot frees up
        later than ``timeout`` seconds from now.
        """
        window = self._windows.get(proto_id)
        if window is None:
            return 0.0
        started = self._clock()
        lock = self._locks.get(proto_id)
        if lock is None:
            lock = self._locks[proto_id] = anyio.Lock()
        deadline = math.inf if timeout is None else started + timeout
        lim = window.limit
        self.waiting += 1
        try:
            waited_for = False
            try:
                lock.acquire_nowait()
            except anyio.WouldBlock:  # behind other tasks waiting for this protocol
                waited_for = True
                with anyio.move_on_after(math.inf if timeout is None else timeout) as scope:
                    await lock.acquire()
                if scope.cancelled_caught:
                    raise RateLimited(
                        proto_id, lim.count, lim.window, lim.window, timeout or 0.0
                    ) from None
            try:
                while True:
                    now = self._clock()
                    delay = window.delay(now)
                    if delay <= 0:
                        break
                    if now + delay > deadline:
                        raise RateLimited(proto_id, lim.count, lim.window, delay, timeout or 0.0)
                    waited_for = True
                    await self._sleep(delay)
                window.take(now)
            finally:
                lock.release()
        finally:
            self.waiting -= 1
        waited = now - started
        if waited_for:
            self.waits += 1
            self.wait_seconds += waited
            self.last_wait_seconds = waited
        return waited

    def stats(self) -> dict[str, Any]:
        """The limiter's counters (part of ``Client.stats()``)."""
        return {
            "enabled": bool(self._windows),
            "waits": self.waits,
            "waiting": self.waiting,
            "wait_seconds": round(self.wait_seconds, 6),
            "last_wait_seconds": round(self.last_wait_seconds, 6),
        }


def make_limiter(option: object) -> RateLimiter:
    """The limiter of a ``connect(rate_limits=...)`` option: True, False, or ``{proto: Limit}``."""
    if option is True:
        return RateLimiter()
    if option is False or option is None:
        return RateLimiter({})
    if isinstance(option, Mapping):
        table: dict[int, Limit] = {}
        for proto, lim in option.items():
            if isinstance(proto, bool) or not isinstance(proto, int):
                raise ConfigurationError(f"rate_limits keys must be protocol ids, got {proto!r}")
            if isinstance(lim, tuple) and len(lim) == 2:
                lim = Limit(*lim)
            if not isinstance(lim, Limit):
                raise ConfigurationError(
                    f"rate_limits[{proto}] must be a Limit or (count, window), got {lim!r}"
                )
            table[proto] = lim
        return RateLimiter(table)
    raise ConfigurationError(
        f"rate_limits must be True, False or a mapping of protocol id to Limit, got {option!r}"
    )
