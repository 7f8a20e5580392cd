"""The bridge's state and series kinds: a direct stream in, one message per update out.

Each requested bus kind (:mod:`._buskinds`) opens its direct stream (states: every update,
not conflated; series: every change of the open item) and a pump that turns each item into a
message: the subject of its code, the body (``kind.message(item)``, OpenD's protobuf bytes),
and an id derived from the item alone (:func:`msg_id`), so that two bridges, or one bridge
before and after a restart, publishing the same update store it once. Nothing here names a
kind: what differs is in the bus kind's row.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from . import _subjects
from ._buskinds import BusKind, digest

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._jetstream import Publisher

__all__ = ("chain_key", "msg_id", "pump_items", "served_codes")

logger = logging.getLogger("aiofutu.bridge")


def msg_id(kind: BusKind, code: str, message: Any, previous: str = "") -> tuple[str, str]:
    """(``Nats-Msg-Id``, the content digest) of one update of ``code``.

    The id is ``<code>:<token>:<key>``. Series: the key is the content digest (the message's
    deterministic bytes without the kind's volatile fields): a bar updated in place is a new
    id, the same bar version from any bridge the same id. Chained kinds (states, whose content
    may come back to an earlier value): the key is a digest of the previous update's key and
    this content, a hash chain, so that A, B, A, B are four ids, and two bridges that saw the
    same updates since the same stored one compute the same ids."""
    content = digest(message, kind.volatile)
    key = digest(message, kind.volatile, previous) if kind.chained else content
    return f"{code}:{kind.token}:{key}", content


def chain_key(ident: str) -> str:
    """The key (the last part) of a ``Nats-Msg-Id``."""
    return ident.rpartition(":")[2]


def served_codes(kind: BusKind, codes: tuple[str, ...]) -> tuple[str, ...]:
    """The codes that have ``kind`` (broker queues: the HK ones), logged when some do not."""
    served = tuple(c for c in codes if kind.serves(c))
    if len(served) != len(codes):
        logger.info(
            "bridge: %s is not bridged for %s (not served on that market)",
            kind.token,
            ", ".join(c for c in codes if c not in served),
        )
    return served


async def pump_items(
    kind: BusKind,
    stream: Any,
    publisher: Publisher,
    last: Callable[[str], Awaitable[tuple[str, str] | None]] | None = None,
) -> None:
    """Direct stream -> publish queue, one message per update (see the module's docstring).

    Chained kinds continue the chain of what the stream holds: on a code's first update,
    ``last(subject)`` gives the ``(Nats-Msg-Id, Futu-Digest)`` of the subject's last stored
    message; an update with that content is already stored (not sent: ``skipped``), else it
    is chained after it. An update whose content is the previous one's (OpenD re-sends the
    state after a reconnect) is not sent either. So a restarted or reconnected bridge stores
    no copy of an unchanged state, and a second bridge joins the first one's chain."""
    assert kind.message is not None
    message_of = kind.message
    token = kind.token
    stall = publisher.overflow == "stall"
    put = publisher.put
    offer = publisher.offer
    headers = _subjects.item_headers
    subject_of: dict[str, str] = {}
    previous: dict[str, str] = {}
    contents: dict[str, str] = {}
    chained = kind.chained
    async for item in stream:
        message = message_of(item)
        if message is None:
            continue
        code = item.code
        subj = subject_of.get(code)
        if subj is None:
            subj = subject_of[code] = _subjects.subject(token, code)
            if chained and last is not None:
                found = await last(subj)
                if found is not None:
                    previous[code], contents[code] = chain_key(found[0]), found[1]
        ident, content = msg_id(kind, code, message, previous.get(code, ""))
        if chained and contents.get(code) == content:
            # the state the subject already holds (OpenD's first push after a reconnect or a
            # restart re-sends it): not a new update
            publisher.stats.skipped += 1
            continue
        previous[code], contents[code] = chain_key(ident), content
        entry = (subj, message.SerializePartialToString(), headers(token, code, ident, content))
        if stall:
            await put(entry)
        else:
            offer(entry)
