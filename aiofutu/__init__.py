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
)
from .frames import TICKER_COLUMNS, to_polars
from .models import Ticker
from .state import ClientState, ReconnectPolicy, StateChange
from .streams import Gap, TickerFrameStream, TickerStream

__version__ = "0.1.0"

# A library stays silent unless the application configures logging.
logging.getLogger("aiofutu").addHandler(logging.NullHandler())

__all__ = (
    "TICKER_COLUMNS",
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
    "LocalProtocolError",
    "Market",
    "MissingDependency",
    "OpenDError",
    "ProtoId",
    "ProtocolError",
    "PushDataType",
    "RateLimited",
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
    "__version__",
    "connect",
    "format_code",
    "parse_code",
    "to_polars",
)
