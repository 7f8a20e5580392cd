"""Connection state that a service can watch, and the reconnect policy.

``client.state`` is the current :class:`ClientState`; ``client.state_changes()`` yields a
:class:`StateChange` for every transition (and for OpenD's own upstream status), so a health
endpoint can report exactly why quotes stopped.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

import anyio

from .errors import ConfigurationError

__all__ = ("ClientState", "ReconnectPolicy", "StateChange", "StateWatch")


class ClientState(str, Enum):
    """Life cycle of a client's link to OpenD."""

    CONNECTING = "connecting"
    READY = "ready"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


class StateChange(NamedTuple):
    """One transition. ``upstream`` is OpenD's own quote-server login (from its Notify pushes)."""

    state: ClientState
    cause: str | None
    upstream: bool
    at: float


@dataclass(frozen=True)
class ReconnectPolicy:
    """Exponential backoff with jitter between reconnect attempts.

    The n-th attempt (from 1) waits ``min(max_delay, initial_delay * factor**(n-1))``, scaled by a
    random factor in ``[1 - jitter, 1 + jitter]``. ``max_attempts=None`` retries until closed.
    ``first_connect=True`` applies the policy to the very first connection too, so that a
    service started before OpenD waits for it instead of failing with ``ConnectError``.
    """

    initial_delay: float = 0.5
    max_delay: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2
    max_attempts: int | None = None
    first_connect: bool = False

    def __post_init__(self) -> None:
        for name in ("initial_delay", "max_delay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigurationError(f"{name} must be a number >= 0, got {value!r}")
        if isinstance(self.factor, bool) or not isinstance(self.factor, (int, float)):
            raise ConfigurationError(f"factor must be a number >= 1, got {self.factor!r}")
        if self.factor < 1:
            raise ConfigurationError(f"factor must be a number >= 1, got {self.factor!r}")
        if not isinstance(self.jitter, (int, float)) or not 0 <= self.jitter < 1:
            raise ConfigurationError(f"jitter must be in [0, 1), got {self.jitter!r}")
        attempts = self.max_attempts
        if attempts is not None and (
            isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1
        ):
            raise ConfigurationError(f"max_attempts must be None or an int >= 1, got {attempts!r}")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt number ``attempt`` (1-based)."""
        base = min(self.max_delay, self.initial_delay * self.factor ** max(attempt - 1, 0))
        if not self.jitter:
            return base
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, base * (1.0 + spread))


class StateWatch:
    """Async iterator of :class:`StateChange` for one watcher (see ``Client.state_changes``).

    It knows only the list it is registered in, not the client, so closing it is one removal.
    """

    def __init__(self, watchers: list[StateWatch]) -> None:
        self._watchers = watchers
        self._queue: deque[StateChange] = deque(maxlen=256)
        self._event: anyio.Event | None = None
        self._done = False

    def push(self, change: StateChange) -> None:
        """Queue ``change`` (the client calls this); the oldest go first past 256 unread."""
        self._queue.append(change)
        if self._event is not None:
            self._event.set()

    def __aiter__(self) -> StateWatch:
        return self

    async def __anext__(self) -> StateChange:
        while not self._queue:
            if self._done:
                raise StopAsyncIteration
            self._event = anyio.Event()
            await self._event.wait()
        change = self._queue.popleft()
        if change.state is ClientState.CLOSED:
            self.close()
        return change

    def close(self) -> None:
        """Stop watching; iteration ends after what is queued."""
        self._done = True
        if self in self._watchers:
            self._watchers.remove(self)
        if self._event is not None:
            self._event.set()

    async def aclose(self) -> None:
        """Same as :meth:`close`, for ``contextlib.aclosing`` and the like."""
        self.close()

    async def __aenter__(self) -> StateWatch:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
