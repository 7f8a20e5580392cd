"""The "series" stream shape: items keyed by time, the newest one re-pushed while it fills.

OpenD pushes K-line bars (3007) and time-share minutes (3009) as a series: the open item (the
current bar, the current minute) is re-pushed with the same ``time`` each time it changes, and a
push with a newer ``time`` closes the previous one. A :class:`SeriesStream` yields each change as
an update carrying a ``closed`` flag: ``closed=False`` for an update of the open item,
``closed=True`` once for each item, when a newer one closed it (with the item's last pushed
values). With ``closed_only=True`` only the closed items come, each exactly once.

The buffer, overflow policies (``"raise"``, ``"drop_oldest"``, ``"block"``) and statistics are
those of :class:`~aiofutu.TickerStream`. What fills a stream is the kind's router
(:mod:`aiofutu.quotes._series_router`), the same for every series kind.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast

from ..streams import Overflow, _check_buffer, _check_overflow, _ItemStream
from ._model import TrustedModel
from .kline import AuType, KLine, KLType  # noqa: TC001 (pydantic needs them at runtime)
from .rt import RTPoint  # noqa: TC001

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._routing import Attacher

__all__ = ("KLineUpdate", "RTUpdate", "SeriesGap", "SeriesStream")

logger = logging.getLogger("aiofutu.streams")

_U = TypeVar("_U", "KLineUpdate", "RTUpdate")


class KLineUpdate(TrustedModel):
    """One pushed K-line bar of ``code``: the open bar as it fills, or a bar that just closed.

    ``closed`` is ``False`` for an update of the open bar (OpenD re-pushes it with the same
    ``time`` while it fills) and ``True`` once per bar, when a bar with a newer ``time`` arrived
    (``bar`` then holds its last pushed values).
    """

    code: str
    kl_type: KLType
    au_type: AuType
    closed: bool
    bar: KLine


class RTUpdate(TrustedModel):
    """One pushed time-share minute of ``code``; ``closed`` as in :class:`KLineUpdate`."""

    code: str
    closed: bool
    point: RTPoint


class SeriesGap(NamedTuple):
    """Items of ``code`` that may be lost between the times ``after`` and ``before``.

    Reported after a reconnect when more items closed while the link was down than OpenD's get
    request returns (1000 K-line bars): the items between the last one delivered (``after``)
    and the oldest one OpenD still had (``before``) are unknown.
    """

    code: str
    after: str
    before: str


class SeriesStream(_ItemStream[_U]):
    """``async for update in stream`` over a pushed series (K-lines, time share).

    Items are :class:`KLineUpdate` (``Client.kline_stream``) or :class:`RTUpdate`
    (``Client.rt_stream``). ``closed_only=True`` yields only closed items, each exactly once;
    otherwise every change of the open item comes too (``closed=False``). After a reconnect the
    stream first gets what closed while the link was down (from the kind's get request), in
    order and once each; ``gaps`` lists the :class:`SeriesGap` seen when more was missed than
    OpenD keeps. Leaving the stream keeps the subscription (see ``Client.ticker_stream``).
    """

    def __init__(
        self,
        attacher: Attacher,
        codes: tuple[str, ...],
        *,
        kind: str = "kline",
        key: tuple[int, ...] = (),
        closed_only: bool = False,
        buffer: int = 10_000,
        overflow: Overflow = "raise",
        on_gap: Callable[[SeriesGap], None] | None = None,
    ) -> None:
        super().__init__(
            attacher, codes, buffer=_check_buffer(buffer), overflow=_check_overflow(overflow)
        )
        #: the quote kind's name (``"kline"`` or ``"rt"``), as ``stats()`` reports it
        self.kind = kind
        #: what the router keys this stream's routes by beyond the security (KL type, rehab)
        self.series_key = key
        self.closed_only = bool(closed_only)
        self.on_series_gap = on_gap

    def _put_gap(self, gap: Any) -> None:
        cast("list[Any]", self.gaps).append(gap)
        callback = self.on_series_gap
        if callback is not None:
            try:
                callback(gap)
            except Exception:
                logger.exception("on_gap callback failed")
