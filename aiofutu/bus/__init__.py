"""Read the feed a bridge publishes to NATS JetStream: :func:`subscribe`.

``aiofutu.bus.subscribe("nats://...", ["HK.00700"])`` yields the same :class:`~aiofutu.Ticker`
models as ``client.ticker_stream("HK.00700")``, with the same gap detection and overflow
policies. Needs the ``nats`` extra and anyio's asyncio backend. See docs/bridge.md.
"""

from __future__ import annotations

from ._consumer import BusStream, Since
from ._subscribe import subscribe

__all__ = ("BusStream", "Since", "subscribe")
