"""HK broker queues (Qot_GetBroker 3014, push Qot_UpdateBroker 3015): the client's verbs.

:class:`BrokerAPI` is a stateless mixin written against :class:`~aiofutu.quotes._core.Core`;
``Client`` inherits it. The models, decoder and polars form are :mod:`aiofutu.quotes.broker`;
the push router is :mod:`aiofutu.quotes._state_router`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..enums import ProtoId, SubType
from ..streams import _import_polars
from ._broker_columns import broker_from_reply
from ._core import as_codes, check_timeout
from ._state_verbs import cached_body, check_subscribed, open_stream
from .broker import broker_queue_to_polars, check_broker_code
from .broker import get_broker_request as _request

if TYPE_CHECKING:
    import polars as pl

    from ..latest import LatestStream
    from ..streams import Overflow
    from ._core import Core
    from .broker import BrokerQueue

__all__ = ("BrokerAPI",)


class BrokerAPI:
    """``get_broker_queue``, ``get_broker_queue_frames`` and ``broker_stream``."""

    async def get_broker_queue(
        self: Core, code: str, *, timeout: float | None = None
    ) -> BrokerQueue:
        """The current :class:`~aiofutu.BrokerQueue` of an HK ``code`` (BROKER-subscribed).

        :class:`~aiofutu.UnsupportedMarket` for a non-HK code and
        :class:`~aiofutu.SubscriptionRequired` without the subscription, before sending.
        """
        self._check_open()
        body = cached_body(("broker", code), lambda: _request(code))  # checks the code
        check_subscribed(self, (code,), SubType.BROKER)
        check_timeout(timeout)
        frame = await self._request_frame(ProtoId.QOT_GET_BROKER, body, timeout)
        return broker_from_reply(frame.body, ProtoId.QOT_GET_BROKER, frame.serial)

    async def get_broker_queue_frames(
        self: Core, code: str, *, timeout: float | None = None
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Like :meth:`get_broker_queue`, as the SDK's ``(bid_frame, ask_frame)`` in polars."""
        await _import_polars()
        queue = await BrokerAPI.get_broker_queue(self, code, timeout=timeout)
        return broker_queue_to_polars(queue)

    def broker_stream(
        self: Core,
        *codes: str,
        conflate: bool = True,
        buffer: int = 1_000,
        overflow: Overflow = "raise",
    ) -> LatestStream[BrokerQueue]:
        """An async iterator of pushed :class:`~aiofutu.BrokerQueue` for HK ``codes``.

        :class:`~aiofutu.UnsupportedMarket` for a non-HK code. Conflation, ``buffer`` and
        ``overflow`` as for :meth:`quote_stream`.
        """
        for code in as_codes(codes):
            check_broker_code(code)
        return open_stream(
            self, "broker", codes, conflate=conflate, buffer=buffer, overflow=overflow
        )
