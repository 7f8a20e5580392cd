"""The resume point of a durable bus consumer: acknowledged only once the application is done.

A message taken from NATS is not done when it arrives (it waits in the stream's buffer, or is
held for a late fill), nor when ``__anext__`` returns it (the application is working on it):
it is done when the application asks for the next one, calls ``commit()``, or leaves the
``async with`` block without an exception; or when the stream itself lets it go (a malformed
message, a tick lost to the overflow policy). Per subject, the resume point is the newest
message that is done with every one before it done too; it is acknowledged with JetStream's
``AckAll`` (one ack covers everything before it), every ``interval`` seconds, and
synchronously (the server confirms) by ``commit()`` and on close.

A restarted consumer resumes right after that point: nothing that was not done is skipped,
nothing done is delivered again (after a crash: only what was done since the last ack, at most
``interval`` seconds of ticks, unless the application ``commit()``-ed).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

import anyio

__all__ = ("Acks", "Mark")

logger = logging.getLogger("aiofutu.bus")


class Mark:
    """One message taken from NATS by a durable consumer, and whether it is done."""

    __slots__ = ("done", "msg", "sseq", "state")

    def __init__(self, state: _Subject, sseq: int, msg: Any) -> None:
        self.state = state
        self.sseq = sseq
        #: None once the consumer it came from is gone (its ack would go to the wrong one)
        self.msg: Any = msg
        self.done = False


class _Subject:
    __slots__ = ("acked", "arrivals", "confirmed", "point", "point_seq")

    def __init__(self) -> None:
        #: marks in arrival order, done or not, after the resume point
        self.arrivals: deque[Mark] = deque()
        #: the newest message done with all before it (what to acknowledge), its sequence
        self.point: Any = None
        self.point_seq = 0
        #: the stream sequence last acknowledged (confirmed or not), and last confirmed
        self.acked = 0
        self.confirmed = 0

    def advance(self) -> None:
        arrivals = self.arrivals
        while arrivals and arrivals[0].done:
            mark = arrivals.popleft()
            if mark.msg is not None:
                self.point = mark.msg
                self.point_seq = mark.sseq


class Acks:
    """Resume points of one durable stream, one per subject."""

    def __init__(self) -> None:
        self._subjects: dict[str, _Subject] = {}

    def arrived(self, subj: str, sseq: int, msg: Any) -> Mark:
        """A message taken from the consumer on ``subj``: tracked until it is done."""
        state = self._subjects.get(subj)
        if state is None:
            state = self._subjects[subj] = _Subject()
        mark = Mark(state, sseq, msg)
        state.arrivals.append(mark)
        return mark

    def resume_after(self, subj: str) -> int:
        """The stream sequence this process has acknowledged on ``subj`` (0: none)."""
        state = self._subjects.get(subj)
        return 0 if state is None else max(state.acked, state.point_seq)

    def consumer_replaced(self, subj: str) -> None:
        """The consumer of ``subj`` was created again: acks of its old messages would go to
        the new one with the wrong numbers, so only messages of the new one are acknowledged."""
        state = self._subjects.get(subj)
        if state is not None:
            for mark in state.arrivals:
                mark.msg = None
            state.point = None

    async def flush(self, nc: Any = None, *, timeout: float = 5.0) -> bool:
        """Acknowledge every subject's resume point that moved. With ``nc``, wait until the
        server has them all (a synchronous ack, or a round trip after an earlier one). False
        when an ack could not be sent (NATS down, the consumer gone: the next flush retries)."""
        ok = True
        unconfirmed = False
        for state in self._subjects.values():
            state.advance()
            msg = state.point
            if msg is None or state.point_seq <= state.acked:
                unconfirmed = unconfirmed or state.acked > state.confirmed
                continue
            seq = state.point_seq
            try:
                if nc is not None:
                    await msg.ack_sync(timeout=timeout)
                    state.confirmed = seq
                else:
                    await msg.ack()
            except Exception as exc:
                logger.debug("bus: ack of stream sequence %d failed: %r", seq, exc)
                ok = False
                continue
            state.acked = seq
        if nc is not None and unconfirmed:
            try:
                await nc.flush(timeout=timeout)
            except Exception as exc:
                logger.debug("bus: flushing the acks failed: %r", exc)
                return False
            for state in self._subjects.values():
                state.confirmed = state.acked
        return ok

    async def run(self, interval: float) -> None:
        """Flush every ``interval`` seconds until cancelled."""
        while True:
            await anyio.sleep(interval)
            await self.flush()


def settle(marks: list[Mark]) -> None:
    """The application is done with these."""
    for mark in marks:
        mark.done = True
    marks.clear()
