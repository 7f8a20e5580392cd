"""aiofutu: an asyncio-native (anyio) client for the Futu / moomoo OpenD quote gateway."""

from __future__ import annotations

import logging

from .client import Client, SubscriptionInfo, connect
from .codes import format_code, parse_code
from .enums import (
    Market,
    ProtoId,
    PushDataType,
    RetType,
    Session,
    SubType,
    TickerDirection,
    TickerType,
)
from .errors import (
    ClientClosed,
    ConfigurationError,
    ConnectError,
    ConnectionLost,
    FutuError,
    HistoryQuotaExhausted,
    InvalidCode,
    LocalProtocolError,
    MissingDependency,
    OpenDError,
    ProtocolError,
    RateLimited,
    RemoteProtocolError,
    RequestTimeout,
    SlowConsumer,
    SubscriptionRequired,
    TransportError,
    UnsupportedMarket,
)
from .frames import TICKER_COLUMNS, to_polars
from .latest import LatestStream
from .models import Ticker
from .quotes.basic import QUOTE_COLUMNS, Quote
from .quotes.broker import BrokerEntry, BrokerQueue
from .quotes.kline import AuType, KLine, KLType
from .quotes.orderbook import OrderBook, OrderBookDetail, OrderBookLevel
from .quotes.rt import RTPoint
from .quotes.series_stream import KLineUpdate, RTUpdate, SeriesGap, SeriesStream
from .state import ClientState, ReconnectPolicy, StateChange
from .streams import Gap, TickerFrameStream, TickerStream

__version__ = "0.1.0"

# A library stays silent unless the application configures logging.
logging.getLogger("aiofutu").addHandler(logging.NullHandler())

__all__ = (
    "AuType",
    "KLType",
    "KLine",
    "KLineUpdate",
    "RTPoint",
    "RTUpdate",
    "SeriesGap",
    "SeriesStream",
    "QUOTE_COLUMNS",
    "TICKER_COLUMNS",
    "BrokerEntry",
    "BrokerQueue",
    "Client",
    "ClientClosed",
    "ClientState",
    "ConfigurationError",
    "ConnectError",
    "ConnectionLost",
    "FutuError",
    "Gap",
    "HistoryQuotaExhausted",
    "InvalidCode",
    "LatestStream",
    "LocalProtocolError",
    "Market",
    "MissingDependency",
    "OpenDError",
    "OrderBook",
    "OrderBookDetail",
    "OrderBookLevel",
    "ProtoId",
    "ProtocolError",
    "PushDataType",
    "RateLimited",
    "Quote",
    "ReconnectPolicy",
    "RemoteProtocolError",
    "RequestTimeout",
    "RetType",
    "Session",
    "SlowConsumer",
    "StateChange",
    "SubType",
    "SubscriptionInfo",
    "SubscriptionRequired",
    "Ticker",
    "TickerDirection",
    "TickerFrameStream",
    "TickerStream",
    "TickerType",
    "TransportError",
    "UnsupportedMarket",
    "__version__",
    "connect",
    "format_code",
    "parse_code",
    "to_polars",
)
