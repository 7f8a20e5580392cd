"""The one table of quote kinds. Every other per-kind table is derived from it.

A row says what a kind is on the wire (sub types, get and push protocol ids and their messages)
and how the layers above treat it (stream shape, restore mode, columns, router). From it come
``_protocol.RESPONSE_TYPES``, the push handlers the client registers, the simulator's request
handlers for kinds, and the CLI's ``--kind`` choices. Adding a kind is one row here, one module
per side (``aiofutu/quotes/<kind>.py`` for the client, a handler for the simulator), never an
edit of four tables.

This module is data only (enums and protobuf classes), so that the protocol layer below the
connection can derive from it. What lives above (the router class) is named by dotted path and
resolved on first use, which keeps the layering acyclic.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ._pb import (
    qot_get_basic_qot_pb2,
    qot_get_broker_pb2,
    qot_get_kl_pb2,
    qot_get_order_book_pb2,
    qot_get_rt_pb2,
    qot_get_ticker_pb2,
    qot_update_basic_qot_pb2,
    qot_update_broker_pb2,
    qot_update_kl_pb2,
    qot_update_order_book_pb2,
    qot_update_rt_pb2,
    qot_update_ticker_pb2,
)
from .enums import PUSH_PROTO_IDS, ProtoId, SubType
from .frames import CUR_KLINE_COLUMNS, RT_COLUMNS, TICKER_COLUMNS

if TYPE_CHECKING:
    from google.protobuf.message import Message

__all__ = (
    "KINDS",
    "KINDS_BY_NAME",
    "KINDS_BY_PUSH_ID",
    "KINDS_BY_SUB_TYPE",
    "KLINE_SUB_TYPES",
    "QuoteKind",
    "response_types",
)

#: "tape": every item once, in order (dedupe, backfill after a reconnect);
#: "state": the newest value per security matters (conflate; first push restores it);
#: "series": items keyed by time, the newest one re-pushed while it fills (upsert by time; a new
#: time closes the previous item; backfill after a reconnect).
Shape = Literal["tape", "state", "series"]
#: How a kind's streams get back in step after a reconnect: a get request that backfills what
#: was missed ("backfill"), or OpenD's first push of the current state ("first_push").
Restore = Literal["backfill", "first_push"]


@dataclass(frozen=True)
class QuoteKind:
    """One kind of quote data, as OpenD serves it and as aiofutu routes it."""

    name: str
    sub_types: tuple[SubType, ...]
    get_proto_id: int
    push_proto_id: int
    get_request: type[Message]
    get_response: type[Message]
    push_response: type[Message]
    shape: Shape
    restore: Restore
    #: the SDK's columns of the kind's polars frame, in order
    columns: tuple[str, ...]
    #: ``"module:attribute"`` of the router class (a ``KindRouter``), resolved on first use
    router: str
    #: how many items a backfill request may return (``restore="backfill"`` only)
    backfill_max: int = 0
    #: ``"module:function"`` giving the kind's bus kinds (subject tokens and what the bridge and
    #: the bus consumers need of each: ``aiofutu.bridge._buskinds``), resolved on first use
    bus: str = ""
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def router_class(self) -> Any:
        """The router class, imported on first use."""
        cls = self._cache.get("router")
        if cls is None:
            module, _, attr = self.router.partition(":")
            cls = self._cache["router"] = getattr(importlib.import_module(module), attr)
        return cls

    def bus_kinds(self) -> tuple[Any, ...]:
        """The kind's ``BusKind`` rows (none when ``bus`` is empty), imported on first use."""
        if not self.bus:
            return ()
        found = self._cache.get("bus")
        if found is None:
            module, _, attr = self.bus.partition(":")
            found = self._cache["bus"] = getattr(importlib.import_module(module), attr)(self)
        return tuple(found)

    def new_router(self) -> Any:
        """A fresh router for one client (the router class is given its kind)."""
        return self.router_class()(self)


#: The 15 K-line sub types (protocol-quotes.md §1.1), each pushing 3007.
KLINE_SUB_TYPES: tuple[SubType, ...] = (
    SubType.K_1M,
    SubType.K_3M,
    SubType.K_5M,
    SubType.K_10M,
    SubType.K_15M,
    SubType.K_30M,
    SubType.K_60M,
    SubType.K_120M,
    SubType.K_180M,
    SubType.K_240M,
    SubType.K_DAY,
    SubType.K_WEEK,
    SubType.K_MON,
    SubType.K_QUARTER,
    SubType.K_YEAR,
)

KINDS: tuple[QuoteKind, ...] = (
    QuoteKind(
        name="ticker",
        sub_types=(SubType.TICKER,),
        get_proto_id=ProtoId.QOT_GET_TICKER,
        push_proto_id=ProtoId.QOT_UPDATE_TICKER,
        get_request=qot_get_ticker_pb2.Request,
        get_response=qot_get_ticker_pb2.Response,
        push_response=qot_update_ticker_pb2.Response,
        shape="tape",
        restore="backfill",
        columns=TICKER_COLUMNS,
        router="aiofutu.quotes._ticker_router:TickerRouter",
        bus="aiofutu.bridge._buskinds:ticker_kinds",
        backfill_max=1000,
    ),
    QuoteKind(
        name="kline",
        # every K-line period, in the SDK's K-line order (the push names a KLType, not these)
        sub_types=KLINE_SUB_TYPES,
        get_proto_id=ProtoId.QOT_GET_KL,
        push_proto_id=ProtoId.QOT_UPDATE_KL,
        get_request=qot_get_kl_pb2.Request,
        get_response=qot_get_kl_pb2.Response,
        push_response=qot_update_kl_pb2.Response,
        shape="series",
        restore="backfill",
        columns=CUR_KLINE_COLUMNS,
        router="aiofutu.quotes._series_router:KLineRouter",
        bus="aiofutu.bridge._buskinds:kline_kinds",
        backfill_max=1000,
    ),
    QuoteKind(
        name="rt",
        sub_types=(SubType.RT_DATA,),
        get_proto_id=ProtoId.QOT_GET_RT,
        push_proto_id=ProtoId.QOT_UPDATE_RT,
        get_request=qot_get_rt_pb2.Request,
        get_response=qot_get_rt_pb2.Response,
        push_response=qot_update_rt_pb2.Response,
        shape="series",
        restore="backfill",
        columns=RT_COLUMNS,
        router="aiofutu.quotes._series_router:RTRouter",
        bus="aiofutu.bridge._buskinds:rt_kinds",
        backfill_max=0,  # 3008 returns the whole day
    ),
    # The state kinds: every push is the whole state of a security. Their polars forms are
    # shaped as the SDK shapes them (quotes.basic.QUOTE_COLUMNS; a dict of two level frames
    # for the order book; a bid and an ask frame for the broker queue), so no single tuple.
    QuoteKind(
        name="quote",
        sub_types=(SubType.QUOTE,),
        get_proto_id=ProtoId.QOT_GET_BASIC_QOT,
        push_proto_id=ProtoId.QOT_UPDATE_BASIC_QOT,
        get_request=qot_get_basic_qot_pb2.Request,
        get_response=qot_get_basic_qot_pb2.Response,
        push_response=qot_update_basic_qot_pb2.Response,
        shape="state",
        restore="first_push",
        columns=(),
        router="aiofutu.quotes._state_router:StateRouter",
        bus="aiofutu.bridge._buskinds:quote_kinds",
    ),
    QuoteKind(
        name="order_book",
        # the index of the sub type is the route's variant, the push's orderBookType
        sub_types=(SubType.ORDER_BOOK, SubType.ORDER_BOOK_ODD),
        get_proto_id=ProtoId.QOT_GET_ORDER_BOOK,
        push_proto_id=ProtoId.QOT_UPDATE_ORDER_BOOK,
        get_request=qot_get_order_book_pb2.Request,
        get_response=qot_get_order_book_pb2.Response,
        push_response=qot_update_order_book_pb2.Response,
        shape="state",
        restore="first_push",
        columns=(),
        router="aiofutu.quotes._state_router:StateRouter",
        bus="aiofutu.bridge._buskinds:order_book_kinds",
    ),
    QuoteKind(
        name="broker",
        sub_types=(SubType.BROKER,),
        get_proto_id=ProtoId.QOT_GET_BROKER,
        push_proto_id=ProtoId.QOT_UPDATE_BROKER,
        get_request=qot_get_broker_pb2.Request,
        get_response=qot_get_broker_pb2.Response,
        push_response=qot_update_broker_pb2.Response,
        shape="state",
        restore="first_push",
        columns=(),
        router="aiofutu.quotes._state_router:StateRouter",
        bus="aiofutu.bridge._buskinds:broker_kinds",
    ),
)

KINDS_BY_NAME: dict[str, QuoteKind] = {k.name: k for k in KINDS}
KINDS_BY_PUSH_ID: dict[int, QuoteKind] = {k.push_proto_id: k for k in KINDS}
KINDS_BY_SUB_TYPE: dict[SubType, QuoteKind] = {t: k for k in KINDS for t in k.sub_types}


def response_types() -> dict[int, type[Message]]:
    """protocol id -> Response message, for every get and push of every kind."""
    out: dict[int, type[Message]] = {}
    for k in KINDS:
        out[k.get_proto_id] = k.get_response
        out[k.push_proto_id] = k.push_response
    return out


def _check() -> None:
    for k in KINDS:
        if k.push_proto_id not in PUSH_PROTO_IDS:  # pragma: no cover (a wrong row)
            raise AssertionError(f"kind {k.name}: {k.push_proto_id} is not a push protocol")
    if len(KINDS_BY_NAME) != len(KINDS) or len(KINDS_BY_PUSH_ID) != len(KINDS):
        raise AssertionError("two quote kinds share a name or a push protocol")  # pragma: no cover


_check()
