"""Tickers (Qot_GetTicker 3010, push Qot_UpdateTicker 3011): the client's verbs.

:class:`TickerAPI` is a stateless mixin written against :class:`~aiofutu.quotes._core.Core`;
``Client`` inherits it. The push router is :mod:`aiofutu.quotes._ticker_router`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import _protocol
from ..codes import format_code, parse_code
from ..enums import ProtoId, SubType
from ..errors import ConfigurationError, SubscriptionRequired
from ..frames import ColumnBuffer
from ..models import Ticker, tickers_from_columns
from ..streams import Gap, Overflow, TickerFrameStream, TickerStream, _import_polars
from ._core import as_codes, check_timeout
from ._ticker_router import MAX_TICKER_NUM, ticker_columns

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    import polars as pl

    from .._columns import TickColumns
    from ._core import Core

__all__ = ("TickerAPI",)

#: encoded Qot_GetTicker requests by (market, code, num): the same bytes every time
_BODIES: dict[tuple[int, str, int], bytes] = {}


def _ticker_body(market: int, local: str, num: int) -> bytes:
    """The encoded Qot_GetTicker request, encoded once per (market, code, num)."""
    key = (market, local, num)
    body = _BODIES.get(key)
    if body is None:
        if len(_BODIES) >= 1024:
            _BODIES.clear()
        req = _protocol.get_ticker_request(market, local, num)
        body = _BODIES[key] = _protocol.encode_message(req)
    return body


class TickerAPI:
    """``get_rt_ticker``, ``get_rt_ticker_frame``, ``ticker_stream`` and ``ticker_frames``."""

    def _ticker_request(self: Core, code: str, num: int) -> bytes:
        self._check_open()
        market, local = parse_code(code)
        if isinstance(num, bool) or not isinstance(num, int):
            raise ConfigurationError(f"num must be an int in 1..{MAX_TICKER_NUM}, got {num!r}")
        if not 1 <= num <= MAX_TICKER_NUM:
            raise ConfigurationError(
                f"num must be in 1..{MAX_TICKER_NUM} (OpenD keeps the latest {MAX_TICKER_NUM} "
                f"ticks), got {num}"
            )
        if not self._book.has(code, SubType.TICKER):
            raise SubscriptionRequired(code, SubType.TICKER.name)
        return _ticker_body(market.wire, local, num)

    async def _get_ticker(self: Core, code: str, num: int, timeout: float | None) -> TickColumns:
        req = TickerAPI._ticker_request(self, code, num)
        check_timeout(timeout)
        frame = await self._request_frame(ProtoId.QOT_GET_TICKER, req, timeout)
        return ticker_columns(frame)

    async def get_rt_ticker(
        self: Core, code: str, num: int = 500, *, timeout: float | None = None
    ) -> list[Ticker]:
        """The latest ``num`` (1..1000) ticks of a TICKER-subscribed security, oldest first."""
        cols = await TickerAPI._get_ticker(self, code, num, timeout)
        out: list[Ticker] = []
        tickers_from_columns(format_code(cols.market, cols.code), cols, out)
        return out

    async def get_rt_ticker_frame(
        self: Core, code: str, num: int = 500, *, timeout: float | None = None
    ) -> pl.DataFrame:
        """Like :meth:`get_rt_ticker`, as a polars DataFrame with the SDK's columns.

        Built straight from the decoded columns (no model per tick).
        """
        await _import_polars()
        cols = await TickerAPI._get_ticker(self, code, num, timeout)
        buf = ColumnBuffer()
        buf.add(format_code(cols.market, cols.code), cols)
        return buf.to_frame()

    def ticker_stream(
        self: Core,
        *codes: str,
        buffer: int = 10_000,
        overflow: Overflow = "raise",
        on_gap: Callable[[Gap], None] | None = None,
        is_first_push: bool = True,
    ) -> TickerStream:
        """An async iterator of pushed :class:`Ticker` for ``codes``.

        Use ``async with client.ticker_stream("HK.00700") as ticks: async for t in ticks: ...``.
        Entering subscribes TICKER with push for codes not yet subscribed that way (with
        ``is_first_push``, OpenD first re-sends the latest tick of each code). Leaving only
        detaches the stream: the subscription stays, because OpenD refuses to cancel one younger
        than a minute; call :meth:`unsubscribe` yourself when you want it gone.
        """
        self._check_open()
        stream = TickerStream(
            self._attacher("ticker"),
            tuple(as_codes(codes)),
            buffer=buffer,
            overflow=overflow,
            on_gap=on_gap,
        )
        stream.first_push = bool(is_first_push)
        return stream

    def ticker_frames(
        self: Core,
        codes: str | Iterable[str],
        *,
        max_rows: int = 10_000,
        max_latency: float = 0.1,
        buffer: int = 1_000_000,
        overflow: Overflow = "raise",
        on_gap: Callable[[Gap], None] | None = None,
        is_first_push: bool = False,
    ) -> TickerFrameStream:
        """An async iterator of polars DataFrames of pushed ticks (the fast path for analytics)."""
        self._check_open()
        frames = TickerFrameStream(
            self._attacher("ticker"),
            tuple(as_codes(codes)),
            max_rows=max_rows,
            max_latency=max_latency,
            buffer=buffer,
            overflow=overflow,
            on_gap=on_gap,
        )
        frames.first_push = bool(is_first_push)
        return frames
