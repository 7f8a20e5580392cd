"""Scenarios of the simulator: named presets, and the knobs that may be turned while it runs.

A scenario is a set of :class:`~aiofutu.sim.SimConfig` values (``SimConfig(scenario="gaps")``,
``aiofutu sim --scenario gaps``); each knob is also a field of its own, so presets and single
flags combine. The runtime half lives in :class:`Faults` (``server.faults``): plain attributes,
so a test can flip one mid-conversation (``server.faults.market_hours = "closed"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Literal

__all__ = (
    "MARKET_HOURS",
    "SCENARIOS",
    "SCENARIO_HELP",
    "ErrCode",
    "Faults",
    "MarketHours",
    "corrupt_sha1",
)

#: ``"open"``: every market trades around the clock (the default, so a demo always moves);
#: ``"closed"``: no live ticks anywhere; ``"real"``: each market trades only in its sessions
#: (HK/SH/SZ/US calendars, weekends closed, no holidays).
MarketHours = Literal["open", "closed", "real"]
MARKET_HOURS: tuple[str, ...] = ("open", "closed", "real")

#: Named presets. A preset only fills in fields left at their default, so
#: ``SimConfig(scenario="gaps", gap_every=5)`` keeps ``gap_every=5``.
SCENARIOS: dict[str, dict[str, Any]] = {
    "steady": {},
    "burst": {"burst": 10_000, "burst_per_push": 1},
    "closed": {"market_hours": "closed"},
    "hours": {"market_hours": "real"},
    "gaps": {"gap_every": 20, "gap_size": 1},
    "slow": {"reply_delay": 0.5},
    "drop": {"drop_after_frames": 200},
    "corrupt": {"corrupt_every": 50},
    "quota": {"sub_quota": 0},
    "lenient": {"unsub_min_age": 0.0},
    "us-seconds": {"us_second_sequences": True},
}

#: One line per preset, for ``aiofutu sim --help`` and the docs.
SCENARIO_HELP: dict[str, str] = {
    "steady": "live ticks at --rate per second per code, every OpenD rule in force",
    "burst": "10,000 ticks as fast as possible after each TICKER push registration",
    "closed": "no live ticks: every market is closed (GetGlobalState says so too)",
    "hours": "ticks only in each market's real trading sessions",
    "gaps": "one trade in 20 never appears: HK sequence counters jump (gaps)",
    "slow": "every reply half a second late",
    "drop": "every connection is closed after it was sent 200 frames",
    "corrupt": "every 50th push frame of a connection has a wrong SHA1",
    "quota": "no subscription quota: every new Qot_Sub is refused",
    "lenient": "unsubscribe at once (no one-minute rule)",
    "us-seconds": "US sequences carry only the second: trades of one second share one",
}


class ErrCode(IntEnum):
    """``errCode`` values the simulator puts in failed replies.

    OpenD's own numbers are not documented; these only have to be non-zero and stable.
    """

    INVALID_REQUEST = 1
    NOT_INITIALIZED = 2
    UNKNOWN_PROTO = 3
    QUOTA_EXHAUSTED = 4
    UNSUB_TOO_EARLY = 5
    NOT_SUBSCRIBED = 6
    ENCRYPTION = 7  # InitConnect refused: not encrypted, wrong RSA key, unknown packetEncAlgo
    UNKNOWN_SECURITY = 8  # a code outside the simulator's security list
    RATE_LIMITED = 9  # over a protocol's requests-per-30-s limit
    HISTORY_QUOTA = 10  # the history K-line quota is used up


@dataclass
class Faults:
    """Runtime knobs; all of them apply to every connection, and take effect at once."""

    #: Seconds to wait before sending each reply (requests are still handled in order).
    reply_delay: float = 0.0
    #: A hung OpenD: requests are read and dropped unanswered, pushes are withheld, sockets stay
    #: open. The market keeps moving, so ticks made while stalled are in the ring afterwards.
    stall: bool = False
    #: The next N reply frames carry a wrong SHA1 in their header.
    corrupt_replies: int = 0
    #: The next N push frames carry a wrong SHA1 in their header.
    corrupt_pushes: int = 0
    #: Every N-th push frame of each connection carries a wrong SHA1 (0 = never).
    corrupt_every: int = 0
    #: OpenD is gone: new connections are accepted and closed at once (InitConnect never answered).
    refuse_connections: bool = False
    #: Close each connection once it was sent this many frames, replies and pushes (0 = never).
    drop_after_frames: int = 0
    #: Every N-th tick of a security comes after ``gap_size`` trades that never appear (0 = no).
    gap_every: int = 0
    gap_size: int = 1
    #: When live ticks flow, and what GetGlobalState reports (see :data:`MarketHours`).
    market_hours: MarketHours = "open"

    def take_corrupt(self) -> bool:
        """Consume one pending corrupt reply, if any."""
        if self.corrupt_replies > 0:
            self.corrupt_replies -= 1
            return True
        return False

    def corrupt_push(self, serial: int) -> bool:
        """Whether the push frame with this connection serial gets a wrong SHA1."""
        if self.corrupt_every > 0 and serial % self.corrupt_every == 0:
            return True
        if self.corrupt_pushes > 0:
            self.corrupt_pushes -= 1
            return True
        return False


def corrupt_sha1(frame: bytes) -> bytes:
    """``frame`` with the first byte of its header's SHA1 (offset 16) inverted."""
    return frame[:16] + bytes((frame[16] ^ 0xFF,)) + frame[17:]


def corrupt_digest(digest: bytes) -> bytes:
    """A SHA1 digest with its first byte inverted."""
    return bytes((digest[0] ^ 0xFF,)) + digest[1:]
