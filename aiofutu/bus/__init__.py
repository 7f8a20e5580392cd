"""Read the feed a bridge publishes to NATS JetStream: :func:`subscribe`, :func:`ticker_frames`.

``aiofutu.bus.subscribe("nats://...", ["HK.00700"])`` yields the same :class:`~aiofutu.Ticker`
models as ``client.ticker_stream("HK.00700")``, and ``aiofutu.bus.ticker_frames(...)`` the same
polars frames as ``client.ticker_frames(...)``, with the same gap detection and overflow
policies; ``quote_stream``, ``order_book_stream``, ``broker_stream``, ``kline_stream`` and
``rt_stream`` (or :func:`kind_stream` by token) yield the models of the client's verbs of the
same names. Needs the ``nats`` extra and anyio's asyncio backend. See docs/bridge.md.
"""

from __future__ import annotations

from ._consumer import BusStream
from ._frames import BusFrameStream
from ._items import BusItemStream
from ._kindstreams import (
    broker_stream,
    kind_stream,
    kline_stream,
    order_book_stream,
    quote_stream,
    rt_stream,
)
from ._position import ItemSince, Since
from ._subscribe import subscribe, ticker_frames

__all__ = (
    "BusFrameStream",
    "BusItemStream",
    "BusStream",
    "ItemSince",
    "Since",
    "broker_stream",
    "kind_stream",
    "kline_stream",
    "order_book_stream",
    "quote_stream",
    "rt_stream",
    "subscribe",
    "ticker_frames",
)
