"""Order books (Qot_GetOrderBook 3012, push Qot_UpdateOrderBook 3013): the client's verbs.

:class:`OrderBookAPI` is a stateless mixin written against :class:`~aiofutu.quotes._core.Core`;
``Client`` inherits it. The models, decoder, depth limits and polars form are
:mod:`aiofutu.quotes.orderbook`; the push router is :mod:`aiofutu.quotes._state_router`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..codes import parse_code
from ..enums import ProtoId, SubType
from ..errors import ConfigurationError
from ..streams import _import_polars
from ._book_columns import book_from_reply
from ._core import check_timeout
from ._enums import OrderBookType
from ._state_verbs import cached_body, check_subscribed, open_stream
from .orderbook import get_order_book_request, order_book_to_polars

if TYPE_CHECKING:
    from ..latest import LatestStream
    from ..streams import Overflow
    from ._core import Core
    from .orderbook import OrderBook

__all__ = ("OrderBookAPI",)

#: order book type -> the sub type its subscription needs (its index is the route's variant)
_SUB_TYPES = {OrderBookType.NORMAL: SubType.ORDER_BOOK, OrderBookType.ODD: SubType.ORDER_BOOK_ODD}


def _book_type(order_book_type: OrderBookType | str | None) -> OrderBookType | None:
    if order_book_type is None:
        return None
    try:
        return OrderBookType.coerce(order_book_type)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


class OrderBookAPI:
    """``get_order_book``, ``get_order_book_frame`` and ``order_book_stream``."""

    async def get_order_book(
        self: Core,
        code: str,
        num: int = 10,
        order_book_type: OrderBookType | str | None = None,
        *,
        timeout: float | None = None,
    ) -> OrderBook:
        """The current :class:`~aiofutu.OrderBook` of ``code``, ``num`` levels per side.

        ``num`` is checked against the market's depth (1..5 A-shares, 1..10 HK derivatives,
        1..60 US; HK stocks under SF get the full book): :class:`~aiofutu.ConfigurationError`
        before sending. ``order_book_type="ODD"`` asks for the odd-lot book (subscription
        ``ORDER_BOOK_ODD``). :class:`~aiofutu.SubscriptionRequired` when ``code`` is not
        subscribed to the book asked for.
        """
        self._check_open()
        kind = _book_type(order_book_type)
        # building the request checks code and num (typed errors); it is built once
        body = cached_body(
            ("book", code, num, kind), lambda: get_order_book_request(code, num, kind)
        )
        check_subscribed(self, (code,), _SUB_TYPES[kind or OrderBookType.NORMAL])
        check_timeout(timeout)
        frame = await self._request_frame(ProtoId.QOT_GET_ORDER_BOOK, body, timeout)
        return book_from_reply(frame.body, ProtoId.QOT_GET_ORDER_BOOK, frame.serial)

    async def get_order_book_frame(
        self: Core,
        code: str,
        num: int = 10,
        order_book_type: OrderBookType | str | None = None,
        *,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Like :meth:`get_order_book`, shaped as the SDK's dict, ``Bid``/``Ask`` as polars."""
        await _import_polars()
        book = await OrderBookAPI.get_order_book(self, code, num, order_book_type, timeout=timeout)
        return order_book_to_polars(book)

    def order_book_stream(
        self: Core,
        *codes: str,
        odd_lot: bool = False,
        conflate: bool = True,
        buffer: int = 1_000,
        overflow: Overflow = "raise",
    ) -> LatestStream[OrderBook]:
        """An async iterator of pushed :class:`~aiofutu.OrderBook` for ``codes`` (a state stream).

        Each push is the whole book (both sides at the subscribed depth). ``odd_lot=True``
        follows the odd-lot book (``ORDER_BOOK_ODD``) instead of the normal one. Conflation,
        ``buffer`` and ``overflow`` as for :meth:`quote_stream`.
        """
        for code in codes:
            parse_code(code)
        kind = OrderBookType.ODD if odd_lot else OrderBookType.NORMAL
        sub_type = _SUB_TYPES[kind]
        return open_stream(
            self,
            "order_book",
            codes,
            sub_type=sub_type,
            variant=kind.wire,
            conflate=conflate,
            buffer=buffer,
            overflow=overflow,
        )
