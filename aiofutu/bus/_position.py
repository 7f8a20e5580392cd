"""Where a bus consumer starts, and where a durable one resumes: one rule for every bus stream.

``since`` is checked before anything connects (:func:`check_since`) and becomes JetStream's
deliver policy (:func:`start_position`); a durable consumer resumes after its acknowledged
point (:func:`resume_point`, with the marks of :mod:`._acks`). The tick stream
(:mod:`._consumer`) and the state and series streams (:mod:`._items`) share all three.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any, Literal

from ..bridge._nats import import_nats
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from ._acks import Acks

__all__ = (
    "ACK_INTERVAL",
    "ACK_WAIT",
    "ItemSince",
    "Since",
    "check_durable",
    "check_since",
    "durable_name",
    "resume_point",
    "start_position",
)

#: ticks: "new", "all", a time (a tz-aware datetime, or a timedelta ago) or a stream sequence
Since = Literal["new", "all"] | _dt.datetime | _dt.timedelta | int
#: states and series: the same, and "last" (the newest item per subject first: the default)
ItemSince = Literal["last", "new", "all"] | _dt.datetime | _dt.timedelta | int

#: seconds between the acks of a durable consumer's resume point
ACK_INTERVAL = 0.1
#: a durable consumer's messages wait this long for an ack before JetStream re-sends them (the
#: stream re-creates its consumer at the resume point on a restart instead)
ACK_WAIT = 3600.0


def check_since(since: object, words: tuple[str, ...]) -> None:
    """:class:`~aiofutu.ConfigurationError` unless ``since`` is one of ``words``, a tz-aware
    datetime, a timedelta or a stream sequence (int >= 1)."""
    if isinstance(since, str) and since in words:
        return
    if isinstance(since, _dt.datetime):
        if since.tzinfo is None or since.utcoffset() is None:
            raise ConfigurationError("since= as a datetime must be timezone-aware")
        return
    if isinstance(since, _dt.timedelta):
        if since < _dt.timedelta(0):
            raise ConfigurationError(f"since= as a timedelta must not be negative, got {since}")
        return
    if type(since) is not int or since < 1:
        names = ", ".join(repr(w) for w in words)
        raise ConfigurationError(
            f"since must be {names}, a datetime, a timedelta or a stream sequence (int >= 1), "
            f"got {since!r}"
        )


def check_durable(durable: object) -> None:
    """:class:`~aiofutu.ConfigurationError` unless ``durable`` is None or a name."""
    if durable is not None and (not isinstance(durable, str) or not durable.isidentifier()):
        raise ConfigurationError(f"durable must be a name like 'risk_service', got {durable!r}")


def start_position(since: Any) -> dict[str, Any]:
    """The consumer config fields of a start position (``since`` as :func:`check_since`
    accepts it; ``"last"``: the newest message per subject first)."""
    api = import_nats().js.api
    if since == "new":
        return {"deliver_policy": api.DeliverPolicy.NEW}
    if since == "all":
        return {"deliver_policy": api.DeliverPolicy.ALL}
    if since == "last":
        return {"deliver_policy": api.DeliverPolicy.LAST_PER_SUBJECT}
    if isinstance(since, _dt.timedelta):
        since = _dt.datetime.now(_dt.timezone.utc) - since
    if isinstance(since, _dt.datetime):
        if since.tzinfo is None:
            raise ConfigurationError("since= as a datetime must be timezone-aware")
        stamp = since.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {"deliver_policy": api.DeliverPolicy.BY_START_TIME, "opt_start_time": stamp}
    return {"deliver_policy": api.DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": since}


def durable_name(prefix: str, subj: str) -> str:
    """The durable consumer of ``subj`` for the application's name ``prefix``."""
    token = subj.split(".", 1)[1].replace(".", "-").replace("%", "_")
    return f"{prefix}-{token}"


async def resume_point(js: Any, stream: str, durable: str, acks: Acks, subj: str) -> int:
    """A durable consumer resumes after its acknowledged point (0: at ``since``).

    The consumer left by a previous run (or by this one, before a broker restart) is deleted
    and created again at that point: bound again as it is, JetStream would go on after the last
    message it *delivered* and re-send the others only after ``ack_wait``.
    """
    errors = import_nats().js.errors
    floor = 0
    try:
        info = await js.consumer_info(stream, durable)
    except errors.NotFoundError:
        info = None
    if info is not None:
        floor = int(info.ack_floor.stream_seq or 0) if info.ack_floor else 0
        await js.delete_consumer(stream, durable)
    acks.consumer_replaced(subj)
    return max(floor, acks.resume_after(subj))
