"""Per-security tape order of a bus stream: gaps by the HK trade counter, and late fills.

With two bridges, a tick that fills one bridge's hole may reach the stream after newer ticks.
:class:`TapeOrder` (mixed into :class:`~aiofutu.bus.BusStream`) never drops it and never
delivers the tape out of order unannounced: on HK a tick after a hole is held up to
``reorder_window`` seconds for the fill; later than that, the gap is reported and a fill that
still comes is a late fill (delivered, counted, flagged).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ..codes import parse_code
from ..enums import Market
from ..streams import Gap

if TYPE_CHECKING:
    from collections import deque
    from collections.abc import Callable

    from ..models import Ticker
    from ._acks import Mark

__all__ = ("TapeOrder",)

logger = logging.getLogger("aiofutu.bus")

_LOW32 = 0xFFFFFFFF
_HALF32 = 0x80000000
_RESEND_WINDOW = 10_000


class _Tape:
    """Per-security ordering state."""

    __slots__ = ("code", "counter", "held", "held_since", "last", "late_ids")

    def __init__(self, code: str) -> None:
        self.code = code
        self.counter = parse_code(code)[0] is Market.HK
        self.last = -1
        #: HK: ticks after a hole, sorted by sequence, waiting for the hole to be filled
        self.held: list[Ticker] = []
        self.held_since = 0.0


class TapeOrder:
    """The ordering half of a bus stream; the stream supplies ``_push`` and the state."""

    reorder_window: float
    on_gap: Callable[[Gap], None] | None
    on_late_fill: Callable[[Ticker], None] | None
    late_fills: int
    gaps: list[Gap]
    _tapes: dict[str, _Tape]
    _late: deque[Ticker]
    _held_stamps: dict[int, tuple[float, Mark | None]]
    _stamp: float
    _mark: Mark | None

    def _push(self, tick: Ticker) -> None:
        raise NotImplementedError

    def _order(self, tape: _Tape, tick: Ticker) -> None:
        seq = tick.sequence
        last = tape.last
        if last < 0 and not tape.held:
            tape.last = seq
            self._push(tick)
            return
        if not tape.counter:
            if seq < last:
                self._late_fill(tick)
            else:
                tape.last = seq
                self._push(tick)
            return
        step = ((seq & _LOW32) - (last & _LOW32)) & _LOW32
        if step == 1:
            tape.last = seq
            self._push(tick)
            self._release_held(tape)
        elif 0 < step <= _HALF32:  # after a hole: hold it a moment for a late fill
            if self.reorder_window <= 0:
                self._gap(Gap(tape.code, last, seq, step - 1))
                tape.last = seq
                self._push(tick)
                return
            if not tape.held:
                tape.held_since = time.monotonic()
            held = tape.held
            if all(t.sequence != seq for t in held):
                self._held_stamps[id(tick)] = (self._stamp, self._mark)
                held.append(tick)
                held.sort(key=_seq_of)
            elif self._mark is not None:
                self._mark.done = True
        elif step == 0 or ((last - seq) & _LOW32) <= _RESEND_WINDOW:
            self._late_fill(tick)  # behind the tape: a fill that came after its gap was told
        else:
            self._gap(Gap(tape.code, last, seq, None, True))
            tape.last = seq
            self._push(tick)

    def _release_held(self, tape: _Tape) -> None:
        held = tape.held
        while held and ((held[0].sequence & _LOW32) - (tape.last & _LOW32)) & _LOW32 == 1:
            tick = held.pop(0)
            tape.last = tick.sequence
            self._push(tick)
        if held:
            tape.held_since = time.monotonic()

    def _expire(self, now: float) -> None:
        """Held ticks whose hole was not filled within the window: report it, deliver them."""
        for tape in self._tapes.values():
            if tape.held and now - tape.held_since >= self.reorder_window:
                first = tape.held[0]
                step = ((first.sequence & _LOW32) - (tape.last & _LOW32)) & _LOW32
                self._gap(Gap(tape.code, tape.last, first.sequence, step - 1))
                tape.last = first.sequence
                tape.held.pop(0)
                self._push(first)
                self._release_held(tape)
                while tape.held:  # more holes among the held ones: report each
                    nxt = tape.held[0]
                    step = ((nxt.sequence & _LOW32) - (tape.last & _LOW32)) & _LOW32
                    self._gap(Gap(tape.code, tape.last, nxt.sequence, step - 1))
                    tape.last = nxt.sequence
                    tape.held.pop(0)
                    self._push(nxt)
                    self._release_held(tape)

    def _late_fill(self, tick: Ticker) -> None:
        self.late_fills += 1
        self._late.append(tick)
        logger.info("bus: late fill %s sequence %d (after newer ticks)", tick.code, tick.sequence)
        if self.on_late_fill is not None:
            try:
                self.on_late_fill(tick)
            except Exception:
                logger.exception("on_late_fill callback failed")
        self._push(tick)

    def is_late(self, tick: Ticker) -> bool:
        """Whether ``tick`` (one of the latest 1024 late fills) came after newer ticks."""
        return any(t is tick for t in self._late)

    def _gap(self, gap: Gap) -> None:
        self.gaps.append(gap)
        logger.warning(
            "bus: gap on %s: %s tick(s) lost between sequences %d and %d",
            gap.code,
            "an unknown number of" if gap.missing is None else gap.missing,
            gap.after,
            gap.before,
        )
        if self.on_gap is not None:
            try:
                self.on_gap(gap)
            except Exception:
                logger.exception("on_gap callback failed")


def _seq_of(tick: Ticker) -> int:
    return tick.sequence
