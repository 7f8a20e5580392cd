"""Read the feed a bridge publishes to NATS JetStream: :func:`subscribe`, :func:`ticker_frames`.

``aiofutu.bus.subscribe("nats://...", ["HK.00700"])`` yields the same :class:`~aiofutu.Ticker`
models as ``client.ticker_stream("HK.00700")``, and ``aiofutu.bus.ticker_frames(...)`` the same
polars frames as ``client.ticker_frames(...)``, with the same gap detection and overflow
policies. Needs the ``nats`` extra and anyio's asyncio backend. See docs/bridge.md.
"""

from __future__ import annotations

from ._consumer import BusStream, Since
from ._frames import BusFrameStream
from ._subscribe import subscribe, ticker_frames

__all__ = ("BusFrameStream", "BusStream", "Since", "subscribe", "ticker_frames")
