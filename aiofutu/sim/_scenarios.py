"""Fault injection for the simulator: knobs that may be turned while the server runs.

Each fault is a plain attribute so a test can flip it mid-conversation
(``server.faults.stall = True``). New scenarios (drop after N frames, market hours, quota refusal
by rule, ...) belong here as further fields, checked by the session at the one place they apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

__all__ = ("ErrCode", "Faults", "corrupt_sha1")


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


@dataclass
class Faults:
    """Runtime faults; all of them apply to every connection."""

    #: Seconds to wait before sending each reply (requests are still handled in order).
    reply_delay: float = 0.0
    #: A hung OpenD: requests are read and dropped unanswered, pushes are withheld, sockets stay
    #: open. The market keeps moving, so ticks made while stalled are in the ring afterwards.
    stall: bool = False
    #: The next N reply frames carry a wrong SHA1 in their header (pushes are unaffected).
    corrupt_replies: int = 0
    #: OpenD is gone: new connections are accepted and closed at once (InitConnect never answered).
    refuse_connections: bool = False

    def take_corrupt(self) -> bool:
        """Consume one pending corrupt reply, if any."""
        if self.corrupt_replies > 0:
            self.corrupt_replies -= 1
            return True
        return False


def corrupt_sha1(frame: bytes) -> bytes:
    """``frame`` with the first byte of its header's SHA1 (offset 16) inverted."""
    return frame[:16] + bytes((frame[16] ^ 0xFF,)) + frame[17:]
