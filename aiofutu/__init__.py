"""aiofutu: an asyncio-native (anyio) client for the Futu / moomoo OpenD quote gateway."""

from __future__ import annotations

from .codes import format_code, parse_code
from .enums import Market, ProtoId, PushDataType, RetType, Session, SubType, TickerDirection, TickerType
from .errors import (
    ClientClosed,
    ConfigurationError,
    ConnectError,
    ConnectionLost,
    FutuError,
    InvalidCode,
    LocalProtocolError,
    MissingDependency,
    OpenDError,
    ProtocolError,
    RemoteProtocolError,
    RequestTimeout,
    SlowConsumer,
    SubscriptionRequired,
    TransportError,
)
from .frames import TICKER_COLUMNS, to_polars
from .models import Ticker

__version__ = "0.1.0"

__all__ = (
    "TICKER_COLUMNS",
    "ClientClosed",
    "ConfigurationError",
    "ConnectError",
    "ConnectionLost",
    "FutuError",
    "InvalidCode",
    "LocalProtocolError",
    "Market",
    "MissingDependency",
    "OpenDError",
    "ProtoId",
    "ProtocolError",
    "PushDataType",
    "RemoteProtocolError",
    "RequestTimeout",
    "RetType",
    "Session",
    "SlowConsumer",
    "SubType",
    "SubscriptionRequired",
    "Ticker",
    "TickerDirection",
    "TickerType",
    "TransportError",
    "__version__",
    "format_code",
    "parse_code",
    "to_polars",
)
