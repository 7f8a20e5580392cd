"""OpenD's request-rate limits and history quota, as the simulator enforces them.

Per simulator (OpenD counts per account, and one simulator is one account): at most 60 first
pages of history K-lines (3103 without ``nextReqKey``) and 60 snapshots (3203) per 30 s, and 10
market-state requests (3223) per 30 s, each a sliding window; the (n+1)-th request within the
window is refused. ``SimConfig(rate_limits=False)`` lifts them and ``rate_window`` shortens the
window (tests of the client's limiter use a window of a second). The history quota
(``history_quota`` distinct securities per ``history_quota_days``) is kept in a
:class:`~aiofutu.sim.kinds.history.QuotaBook`.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from .kinds.history import FirstPageLimiter, QuotaBook

if TYPE_CHECKING:
    from ._config import SimConfig

__all__ = ("LIMITED", "ServerLimits")

#: protocol id -> (requests per window, name in the refusal).
LIMITED: dict[int, tuple[int, str]] = {
    3103: (60, "Qot_RequestHistoryKL first pages"),
    3203: (60, "Qot_GetSecuritySnapshot"),
    3223: (10, "Qot_GetMarketState"),
}


class ServerLimits:
    """The simulator's rate windows (per protocol) and its history quota."""

    def __init__(self, config: SimConfig) -> None:
        self.enforced = config.rate_limits
        self.window = config.rate_window
        self._windows = {
            proto: FirstPageLimiter(limit=count, window=config.rate_window)
            for proto, (count, _) in LIMITED.items()
        }
        self.quota = QuotaBook(total=config.history_quota, window_days=config.history_quota_days)
        #: requests refused for their rate, by protocol id
        self.refused: Counter[int] = Counter()

    def refuse(self, proto_id: int, c2s: Any) -> str | None:
        """The refusal of a request over its protocol's rate limit, or None (counted if so)."""
        if not self.enforced or proto_id not in self._windows:
            return None
        first = proto_id != 3103 or not c2s.HasField("nextReqKey")
        if self._windows[proto_id].allow(time.monotonic(), first_page=first):
            return None
        self.refused[proto_id] += 1
        count, name = LIMITED[proto_id]
        return (
            f"request too frequent: at most {count} {name} per {self.window:g} seconds "
            "(a sliding window); wait and retry"
        )
