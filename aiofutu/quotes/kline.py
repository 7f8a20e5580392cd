"""K-lines: ``Qot_GetKL`` (3006) and its push ``Qot_UpdateKL`` (3007).

The push is numbered unlike the reply (#1 is the rehab type in 3007, the security in 3006), so
each has its own decoder. Pushes carry the latest bar(s) of one (security, KL type, rehab type);
the open bar is re-pushed with the same ``time`` while it fills, so consumers upsert by time.

The enums :class:`KLType`, :class:`AuType` and :class:`KLFields` live here (candidates for
:mod:`aiofutu.enums`), valued with the SDK's strings.

polars form: :func:`klines_to_polars` gives ``get_cur_kline``'s columns and
:func:`kline_push_to_polars` the push handler's (another order, plus ``k_type``). Absent optional
numbers become 0.0 there, as the SDK renders them; blank bars are kept.
"""

from __future__ import annotations

from enum import IntFlag
from typing import TYPE_CHECKING, Any, cast

from .._pb import qot_get_kl_pb2
from ..codes import format_code, parse_code
from ..enums import _WireEnum
from ..errors import ConfigurationError, ProtocolError
from ..frames import CUR_KLINE_COLUMNS, _polars
from ._model import TrustedModel, trusted

if TYPE_CHECKING:
    import polars as pl

__all__ = (
    "CUR_KLINE_COLUMNS",
    "KLINE_PUSH_COLUMNS",
    "MAX_KL_NUM",
    "AuType",
    "KLFields",
    "KLType",
    "KLine",
    "KLineSeries",
    "get_kl_request",
    "kline_from_pb",
    "kline_push_from_s2c",
    "kline_push_to_polars",
    "klines_from_s2c",
    "klines_to_polars",
)

#: The most bars OpenD keeps for 3006 (the docs' "latest 1000").
MAX_KL_NUM = 1000


class KLType(_WireEnum):
    """Bar periods (``Qot_Common.KLType``), with the SDK's strings."""

    NONE = ("N/A", 0)
    K_1M = ("K_1M", 1)
    K_DAY = ("K_DAY", 2)
    K_WEEK = ("K_WEEK", 3)
    K_MON = ("K_MON", 4)
    K_YEAR = ("K_YEAR", 5)
    K_5M = ("K_5M", 6)
    K_15M = ("K_15M", 7)
    K_30M = ("K_30M", 8)
    K_60M = ("K_60M", 9)
    K_3M = ("K_3M", 10)
    K_QUARTER = ("K_QUARTER", 11)
    K_10M = ("K_10M", 12)
    K_120M = ("K_120M", 13)
    K_180M = ("K_180M", 14)
    K_240M = ("K_240M", 15)


class AuType(_WireEnum):
    """Price adjustment (``Qot_Common.RehabType``): none, forward (qfq) or backward (hfq)."""

    NONE = ("None", 0)
    QFQ = ("qfq", 1)
    HFQ = ("hfq", 2)


class KLFields(IntFlag):
    """Which optional bar fields a 3103 request asks for (``needKLFieldsFlag``)."""

    NONE = 0
    HIGH = 1
    OPEN = 2
    LOW = 4
    CLOSE = 8
    LAST_CLOSE = 16
    VOLUME = 32
    TURNOVER = 64
    TURNOVER_RATE = 128
    PE = 256
    CHANGE_RATE = 512
    ALL = 1023


_KLTYPE_BY_WIRE = {m.wire: m for m in KLType if m is not KLType.NONE}
_AUTYPE_BY_WIRE = {m.wire: m for m in AuType}


def kl_type_of(number: int) -> KLType:
    """The period of a wire number; :class:`~aiofutu.ProtocolError` for an unknown one."""
    try:
        return _KLTYPE_BY_WIRE[number]
    except KeyError:
        raise ProtocolError(f"unknown klType {number} in a K-line message") from None


class KLine(TrustedModel):
    """One bar. Optional numbers are ``None`` when OpenD leaves them out (a blank bar has none).

    ``turnover_rate`` is a fraction (0.01 = 1 %), ``change_rate`` a percent. ``volume`` is the
    high-precision volume when OpenD sends one, as the SDK reads it.
    """

    time: str
    is_blank: bool = False
    open: float | None = None
    close: float | None = None
    high: float | None = None
    low: float | None = None
    last_close: float | None = None
    volume: float | None = None
    turnover: float | None = None
    turnover_rate: float | None = None
    pe: float | None = None
    change_rate: float | None = None
    timestamp: float | None = None


class KLineSeries(TrustedModel):
    """Bars of one security: a 3006 reply, a 3007 push or one page of 3103."""

    code: str
    name: str
    kl_type: KLType | None = None
    au_type: AuType | None = None
    bars: tuple[KLine, ...]


# ------------------------------------------------------------------------------ decoding

#: model attribute <- wire field, for the optional numbers (volume is handled apart); the
#: column decoder and the bridge's re-encoder use the same table
OPTIONAL_FIELDS = (
    ("open", "openPrice"),
    ("close", "closePrice"),
    ("high", "highPrice"),
    ("low", "lowPrice"),
    ("last_close", "lastClosePrice"),
    ("turnover", "turnover"),
    ("turnover_rate", "turnoverRate"),
    ("pe", "pe"),
    ("change_rate", "changeRate"),
    ("timestamp", "timestamp"),
)


def kline_from_pb(k: Any) -> KLine:
    """One bar from a ``Qot_Common.KLine``: absent fields are ``None`` (never a neighbour's)."""
    has = k.HasField
    d: dict[str, Any] = {"time": k.time, "is_blank": k.isBlank}
    for attr, wire in OPTIONAL_FIELDS:
        d[attr] = getattr(k, wire) if has(wire) else None
    if has("hpVolume"):
        d["volume"] = k.hpVolume
    elif has("volume"):
        d["volume"] = float(k.volume)
    else:
        d["volume"] = None
    return trusted(KLine, d)


def _bars(kl_list: Any) -> tuple[KLine, ...]:
    return tuple(kline_from_pb(k) for k in kl_list)


def klines_from_s2c(s2c: Any) -> KLineSeries:
    """The model of a 3006 reply's S2C (also fits a 3103 page: same #1, #2)."""
    sec = s2c.security
    return trusted(
        KLineSeries,
        {
            "code": format_code(sec.market, sec.code),
            "name": s2c.name if s2c.HasField("name") else "N/A",
            "kl_type": None,
            "au_type": None,
            "bars": _bars(s2c.klList),
        },
    )


def kline_push_from_s2c(s2c: Any) -> KLineSeries:
    """The model of a 3007 push's S2C; an unknown klType is a :class:`~aiofutu.ProtocolError`."""
    sec = s2c.security
    return trusted(
        KLineSeries,
        {
            "code": format_code(sec.market, sec.code),
            "name": s2c.name if s2c.HasField("name") else "N/A",
            "kl_type": kl_type_of(s2c.klType),
            "au_type": _AUTYPE_BY_WIRE.get(s2c.rehabType, AuType.NONE),
            "bars": _bars(s2c.klList),
        },
    )


# ------------------------------------------------------------------------------ request


def check_kl_type(ktype: object) -> KLType:
    """``ktype`` as a :class:`KLType` (not ``NONE``), else :class:`~aiofutu.ConfigurationError`."""
    try:
        member = KLType.coerce(ktype)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    if member is KLType.NONE:
        raise ConfigurationError("ktype N/A is not a bar period")
    return member


def check_au_type(autype: object) -> AuType:
    """``autype`` as an :class:`AuType` (``None`` is rejected, as the SDK's get_cur_kline does)."""
    if autype is None:
        raise ConfigurationError("autype is None; use AuType.NONE for unadjusted prices")
    try:
        return AuType.coerce(autype)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def get_kl_request(
    code: str, num: int, ktype: object = KLType.K_DAY, autype: object = AuType.QFQ
) -> qot_get_kl_pb2.Request:
    """The 3006 request; ``num`` must be an int in 1..1000 (OpenD keeps no more)."""
    market, local = parse_code(code)
    kt = check_kl_type(ktype)
    au = check_au_type(autype)
    if isinstance(num, bool) or not isinstance(num, int) or not 1 <= num <= MAX_KL_NUM:
        raise ConfigurationError(f"num must be an int in 1..{MAX_KL_NUM}, got {num!r}")
    req = qot_get_kl_pb2.Request()
    c2s = req.c2s
    c2s.rehabType = au.wire
    c2s.klType = kt.wire
    c2s.security.market = market.wire
    c2s.security.code = local
    c2s.reqNum = num
    c2s.header.securityFirm = 0
    return req


# ------------------------------------------------------------------------------ polars

#: The 3007 push handler's columns, in its order.
KLINE_PUSH_COLUMNS = (
    "code",
    "name",
    "time_key",
    "open",
    "close",
    "high",
    "low",
    "volume",
    "turnover",
    "k_type",
    "last_close",
    "pe_ratio",
    "turnover_rate",
)
_SOURCE = {
    "open": "open",
    "close": "close",
    "high": "high",
    "low": "low",
    "volume": "volume",
    "turnover": "turnover",
    "pe_ratio": "pe",
    "turnover_rate": "turnover_rate",
    "last_close": "last_close",
}


def _zero_filled(series: KLineSeries, columns: tuple[str, ...]) -> pl.DataFrame:
    pl_ = _polars()
    bars = series.bars
    n = len(bars)
    data: dict[str, Any] = {}
    schema: dict[str, Any] = {}
    for col in columns:
        if col in ("code", "name"):
            data[col] = [getattr(series, col)] * n
            schema[col] = pl_.String
        elif col == "time_key":
            data[col] = [b.time for b in bars]
            schema[col] = pl_.String
        elif col == "k_type":
            data[col] = [str(series.kl_type)] * n
            schema[col] = pl_.String
        else:
            attr = _SOURCE[col]
            values = [b.__dict__[attr] for b in bars]
            data[col] = [0.0 if v is None else v for v in values]
            schema[col] = pl_.Float64
    return cast("pl.DataFrame", pl_.DataFrame(data, schema=schema))


def klines_to_polars(series: KLineSeries) -> pl.DataFrame:
    """``get_cur_kline``'s frame: its columns and order, absent numbers 0.0, blank bars kept."""
    return _zero_filled(series, CUR_KLINE_COLUMNS)


def kline_push_to_polars(series: KLineSeries) -> pl.DataFrame:
    """The 3007 handler's frame (``k_type`` the period's SDK string)."""
    return _zero_filled(series, KLINE_PUSH_COLUMNS)
