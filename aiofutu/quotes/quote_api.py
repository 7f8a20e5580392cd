"""Basic quotes (Qot_GetBasicQot 3004, push Qot_UpdateBasicQot 3005): the client's verbs.

:class:`QuoteAPI` is a stateless mixin written against :class:`~aiofutu.quotes._core.Core`;
``Client`` inherits it. The models, decoder and polars form are :mod:`aiofutu.quotes.basic`;
the push router is :mod:`aiofutu.quotes._state_router`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import _protocol
from .._pb import qot_get_basic_qot_pb2
from ..enums import ProtoId, SubType
from ..streams import _import_polars
from ._core import as_codes, check_timeout
from ._quote_columns import QuoteView, quotes_from_view
from ._state_verbs import cached_body, check_subscribed, open_stream
from .basic import get_basic_qot_request, quotes_from_s2c, quotes_to_polars

if TYPE_CHECKING:
    from collections.abc import Iterable

    import polars as pl

    from ..latest import LatestStream
    from ..streams import Overflow
    from ._core import Core
    from .basic import Quote

__all__ = ("QuoteAPI",)


class QuoteAPI:
    """``get_stock_quote``, ``get_stock_quote_frame`` and ``quote_stream``."""

    async def get_stock_quote(
        self: Core, codes: str | Iterable[str], *, timeout: float | None = None
    ) -> list[Quote]:
        """The latest :class:`~aiofutu.Quote` of each QUOTE-subscribed code, in OpenD's order.

        Like the SDK's ``get_stock_quote``: a code string or an iterable of them, de-duplicated
        in order. Raises :class:`~aiofutu.SubscriptionRequired` before anything is sent when a
        code is not subscribed to ``SubType.QUOTE``.
        """
        self._check_open()
        code_list = as_codes(codes)
        check_subscribed(self, code_list, SubType.QUOTE)
        body = cached_body(("quote", *code_list), lambda: get_basic_qot_request(code_list))
        check_timeout(timeout)
        proto_id = ProtoId.QOT_GET_BASIC_QOT
        frame = await self._request_frame(proto_id, body, timeout)
        view = _protocol.decode_response(QuoteView, frame.body, proto_id, frame.serial)
        quotes = quotes_from_view(view.s2c)
        if quotes is None:  # a field the view cannot place: decode exactly
            resp = _protocol.decode_response(
                qot_get_basic_qot_pb2.Response, frame.body, proto_id, frame.serial
            )
            quotes = quotes_from_s2c(resp.s2c)
        return quotes

    async def get_stock_quote_frame(
        self: Core, codes: str | Iterable[str], *, timeout: float | None = None
    ) -> pl.DataFrame:
        """Like :meth:`get_stock_quote`, as a polars DataFrame with the SDK's 62 columns."""
        await _import_polars()
        quotes = await QuoteAPI.get_stock_quote(self, codes, timeout=timeout)
        return quotes_to_polars(quotes)

    def quote_stream(
        self: Core,
        *codes: str,
        conflate: bool = True,
        buffer: int = 1_000,
        overflow: Overflow = "raise",
    ) -> LatestStream[Quote]:
        """An async iterator of pushed :class:`~aiofutu.Quote` for ``codes`` (a state stream).

        ``async with client.quote_stream("HK.00700") as quotes: async for q in quotes: ...``.
        Conflated per security by default (a slow consumer gets the newest quote, ``conflated``
        counts the skipped ones); ``conflate=False`` delivers every push through ``buffer``
        with ``overflow`` as ticker streams do. Entering subscribes QUOTE with push and OpenD's
        first push (the current quote). Leaving detaches; the subscription stays.
        """
        return open_stream(
            self, "quote", codes, conflate=conflate, buffer=buffer, overflow=overflow
        )
