"""K-lines (3006/3007) and time share (3008/3009): the client's verbs.

:class:`KLineAPI` and :class:`RTAPI` are stateless mixins written against
:class:`~aiofutu.quotes._core.Core`; ``Client`` inherits them. Both kinds are "series" (see
:mod:`aiofutu.quotes.series_stream`), routed by :mod:`aiofutu.quotes._series_router`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import _protocol
from .._pb import qot_get_kl_pb2, qot_get_rt_pb2
from .._routing import KindAttacher
from ..enums import ProtoId, SubType
from ..errors import ConnectionLost, SubscriptionRequired
from ..streams import _import_polars
from ._core import as_codes, check_timeout
from ._series_columns import KLineColumns, kline_columns, klines_frame, klines_of
from ._series_router import kline_sub_type
from .kline import (
    AuType,
    KLine,
    KLineSeries,
    KLType,
    check_au_type,
    check_kl_type,
    get_kl_request,
    klines_from_s2c,
    klines_to_polars,
)
from .rt import RTPoint, RTSeries, get_rt_request, rt_from_s2c, rt_to_polars
from .series_stream import KLineUpdate, RTUpdate, SeriesStream

if TYPE_CHECKING:
    from collections.abc import Callable

    import polars as pl

    from .._routing import Sink
    from ..streams import Overflow
    from ._core import Core
    from .series_stream import SeriesGap

__all__ = ("KLineAPI", "RTAPI")

_FORWARD = AuType.QFQ.wire


class _KLineAttacher:
    """Routes a K-line stream, subscribing its period with push and its rehab type where missing.

    OpenD pushes forward-adjusted bars unless the subscription registers other rehab types
    (Qot_Sub #5); a stream of another ``autype`` re-subscribes with the union of what is
    registered and what it needs, which the subscription book keeps for reconnects.
    """

    __slots__ = ("_au", "_client", "_inner", "_sub_type")

    def __init__(self, client: Any, inner: KindAttacher, sub_type: SubType, au: AuType) -> None:
        self._client = client
        self._inner = inner
        self._sub_type = sub_type
        self._au = au.wire

    def _needed(self, code: str) -> tuple[int, ...] | None:
        """The rehab types to subscribe ``code`` with, or ``None`` when nothing is missing."""
        record = self._client._book.get(code, self._sub_type)
        have: tuple[int, ...] = () if record is None or not record.push else record.rehab_types
        if record is not None and record.push and self._au in (have or (_FORWARD,)):
            return None
        if self._au == _FORWARD and not have:
            return ()  # OpenD's default
        return tuple(sorted({*(have or (_FORWARD,)), self._au}))

    async def attach(self, sink: Sink) -> None:
        client = self._client
        client._check_open()
        groups: dict[tuple[int, ...], list[str]] = {}
        for code in sink.codes:
            rehab = self._needed(code)
            if rehab is not None:
                groups.setdefault(rehab, []).append(code)
        router = self._inner._router
        router.attach(sink)  # route first: the first push comes with the Qot_Sub reply
        try:
            for rehab, codes in groups.items():
                await client.subscribe(
                    codes,
                    [self._sub_type],
                    subscribe_push=True,
                    is_first_push=getattr(sink, "first_push", True),
                    rehab_types=[_AU_BY_WIRE[r] for r in rehab],
                )
            if client._conn.closed and client.policy is None:
                raise ConnectionLost("connection to OpenD is lost")
        except BaseException:
            router.detach(sink)
            raise

    def detach(self, sink: Sink) -> None:
        self._inner.detach(sink)


_AU_BY_WIRE = {m.wire: m for m in AuType}


class KLineAPI:
    """``get_cur_kline``, ``get_cur_kline_frame`` and ``kline_stream``."""

    async def _cur_kline(
        self: Core, code: str, num: int, ktype: object, autype: object, timeout: float | None
    ) -> KLineColumns | KLineSeries:
        """The reply as columns (the fast path) or, when the view declines it, exactly."""
        self._check_open()
        req = get_kl_request(code, num, ktype, autype)  # every argument checked, nothing sent
        sub_type = kline_sub_type(check_kl_type(ktype))
        check_timeout(timeout)
        if not self._book.has(code, sub_type):
            raise SubscriptionRequired(code, sub_type.name)
        frame = await self._request_frame(ProtoId.QOT_GET_KL, req, timeout)
        cols = kline_columns(frame.body)
        if cols is not None:
            return cols
        resp = _protocol.decode_response(
            qot_get_kl_pb2.Response, frame.body, ProtoId.QOT_GET_KL, frame.serial
        )
        return klines_from_s2c(resp.s2c)

    async def get_cur_kline(
        self: Core,
        code: str,
        num: int = 100,
        ktype: KLType | str = KLType.K_1M,
        autype: AuType | str = AuType.QFQ,
        *,
        timeout: float | None = None,
    ) -> list[KLine]:
        """The latest ``num`` (1..1000) ``ktype`` bars of a subscribed security, oldest first.

        The security must be subscribed to the period's sub type (``SubType.K_1M`` for
        ``KLType.K_1M``, and so on); the last bar is the open one. Absent numbers are ``None``.
        """
        got = await KLineAPI._cur_kline(self, code, num, ktype, autype, timeout)
        return klines_of(got) if isinstance(got, KLineColumns) else list(got.bars)

    async def get_cur_kline_frame(
        self: Core,
        code: str,
        num: int = 100,
        ktype: KLType | str = KLType.K_1M,
        autype: AuType | str = AuType.QFQ,
        *,
        timeout: float | None = None,
    ) -> pl.DataFrame:
        """Like :meth:`get_cur_kline`, as a polars DataFrame with the SDK's columns and order.

        As in the SDK's ``get_cur_kline``, absent numbers are 0.0 and blank bars are kept.
        Built straight from the decoded columns (no model per bar).
        """
        await _import_polars()
        got = await KLineAPI._cur_kline(self, code, num, ktype, autype, timeout)
        return klines_frame(got) if isinstance(got, KLineColumns) else klines_to_polars(got)

    def kline_stream(
        self: Core,
        *codes: str,
        ktype: KLType | str = KLType.K_1M,
        autype: AuType | str = AuType.QFQ,
        closed_only: bool = False,
        buffer: int = 10_000,
        overflow: Overflow = "raise",
        on_gap: Callable[[SeriesGap], None] | None = None,
        is_first_push: bool = True,
    ) -> SeriesStream[KLineUpdate]:
        """An async iterator of pushed bars of ``codes`` as :class:`KLineUpdate`.

        ``async with client.kline_stream("HK.00700", ktype=KLType.K_1M) as bars:``. Each
        update says whether it is a change of the open bar (``closed=False``) or a bar that a
        newer one closed (``closed=True``, once per bar); ``closed_only=True`` yields only the
        latter. Entering subscribes the period's sub type with push where missing (with
        ``is_first_push`` OpenD first re-sends the open bar). OpenD pushes forward-adjusted
        bars by default; another ``autype`` registers that rehab type for the pushes too.
        """
        self._check_open()
        kt = check_kl_type(ktype)
        au = check_au_type(autype)
        sub_type = kline_sub_type(kt)
        inner = self._attacher("kline", sub_type)
        assert isinstance(inner, KindAttacher)
        stream: SeriesStream[KLineUpdate] = SeriesStream(
            _KLineAttacher(self, inner, sub_type, au),
            tuple(as_codes(codes)),
            kind="kline",
            key=(kt.wire, au.wire),
            closed_only=closed_only,
            buffer=buffer,
            overflow=overflow,
            on_gap=on_gap,
        )
        stream.first_push = bool(is_first_push)
        return stream


class RTAPI:
    """``get_rt_data``, ``get_rt_data_frame`` and ``rt_stream``."""

    async def _rt(self: Core, code: str, timeout: float | None) -> RTSeries:
        self._check_open()
        req = get_rt_request(code)
        check_timeout(timeout)
        if not self._book.has(code, SubType.RT_DATA):
            raise SubscriptionRequired(code, SubType.RT_DATA.name)
        frame = await self._request_frame(ProtoId.QOT_GET_RT, req, timeout)
        resp = _protocol.decode_response(
            qot_get_rt_pb2.Response, frame.body, ProtoId.QOT_GET_RT, frame.serial
        )
        return rt_from_s2c(resp.s2c)

    async def get_rt_data(self: Core, code: str, *, timeout: float | None = None) -> list[RTPoint]:
        """Today's time share of an RT_DATA-subscribed security: one point per minute."""
        series = await RTAPI._rt(self, code, timeout)
        return list(series.points)

    async def get_rt_data_frame(
        self: Core, code: str, *, timeout: float | None = None
    ) -> pl.DataFrame:
        """Like :meth:`get_rt_data`, as a polars DataFrame with the SDK's columns and order."""
        await _import_polars()
        series = await RTAPI._rt(self, code, timeout)
        return rt_to_polars(series, code)

    def rt_stream(
        self: Core,
        *codes: str,
        closed_only: bool = False,
        buffer: int = 10_000,
        overflow: Overflow = "raise",
        on_gap: Callable[[SeriesGap], None] | None = None,
        is_first_push: bool = True,
    ) -> SeriesStream[RTUpdate]:
        """An async iterator of pushed time-share minutes of ``codes`` as :class:`RTUpdate`.

        Upserted by minute: the current minute comes each time it changes (``closed=False``),
        and once more with ``closed=True`` when the next minute starts. Entering subscribes
        RT_DATA with push where missing.
        """
        self._check_open()
        stream: SeriesStream[RTUpdate] = SeriesStream(
            self._attacher("rt"),
            tuple(as_codes(codes)),
            kind="rt",
            closed_only=closed_only,
            buffer=buffer,
            overflow=overflow,
            on_gap=on_gap,
        )
        stream.first_push = bool(is_first_push)
        return stream
