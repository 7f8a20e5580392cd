"""Basic quotes: ``Qot_GetBasicQot`` (3004) and its push ``Qot_UpdateBasicQot`` (3005).

The reply and the push share one S2C (a list of ``BasicQot``), so :func:`quotes_from_s2c` serves
both; a push may carry several securities, and each element is a full record, not a delta.

polars form: :func:`quotes_to_polars` has exactly the 62 columns of the SDK's
``get_stock_quote``, in its order. Where the SDK puts the string ``N/A`` into a numeric column
(an absent option/future/pre-market block or field), the polars column is typed and holds null;
string and enum columns keep the SDK's strings (``name`` and enum columns read ``N/A`` when
absent, ``listing_date`` reads ``N/A`` for options). ``volume`` is the high-precision volume
when OpenD sends one, rounded to an integer as in the ticker frames. An ``update_time`` without
a space gives an empty ``data_time`` (the SDK raises ``IndexError`` there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from .._pb import qot_get_basic_qot_pb2
from ..codes import format_code, parse_code
from ..errors import ConfigurationError
from ..frames import _polars, _volume, column_schema
from ._enums import DarkStatus, IndexOptionType, OptionAreaType, SecurityStatus, lookup
from ._model import TrustedModel, trusted, utc

if TYPE_CHECKING:
    import datetime as _dt
    from collections.abc import Iterable

    import polars as pl

__all__ = (
    "QUOTE_COLUMNS",
    "FutureQuote",
    "OptionQuote",
    "PreAfterMarket",
    "Quote",
    "WarrantQuote",
    "get_basic_qot_request",
    "quote_from_pb",
    "quotes_by_code",
    "quotes_from_s2c",
    "quotes_to_polars",
)


class PreAfterMarket(TrustedModel):
    """US pre-market, after-hours or overnight figures; ``None`` where OpenD sent nothing."""

    price: float | None = None
    high_price: float | None = None
    low_price: float | None = None
    volume: int | None = None
    turnover: float | None = None
    change_val: float | None = None
    #: Percent (20 means 20 %).
    change_rate: float | None = None
    #: Percent.
    amplitude: float | None = None


class OptionQuote(TrustedModel):
    """The option block of a quote (``OptionBasicQotExData``)."""

    strike_price: float
    #: The integer contract size (#2); the SDK reports :attr:`contract_size_float` instead.
    contract_size: int
    open_interest: int
    #: Percent.
    implied_volatility: float
    #: Percent.
    premium: float
    delta: float
    gamma: float
    vega: float
    theta: float
    rho: float
    contract_size_float: float | None = None
    net_open_interest: int | None = None
    #: Days to expiry; negative once expired.
    expiry_date_distance: int | None = None
    contract_nominal_value: float | None = None
    owner_lot_multiplier: float | None = None
    option_area_type: OptionAreaType = OptionAreaType.NA
    contract_multiplier: float | None = None
    index_option_type: IndexOptionType = IndexOptionType.NA


class FutureQuote(TrustedModel):
    """The futures block of a quote (``FutureBasicQotExData``)."""

    last_settle_price: float
    position: int
    position_change: int
    expiry_date_distance: int | None = None


class WarrantQuote(TrustedModel):
    """The warrant block of a quote (``WarrantBasicQotExData``; the SDK drops it)."""

    premium: float
    delta: float | None = None
    implied_volatility: float | None = None


class Quote(TrustedModel):
    """The latest quote of one security (``Qot_Common.BasicQot``), with the SDK's names.

    ``update_time`` is OpenD's string (time of the last *price* update, exchange-local);
    ``update_timestamp`` is the same instant in Unix seconds when OpenD sends it, and is what
    :attr:`datetime` uses. Percentages (``turnover_rate``, ``amplitude``) are percent.
    """

    code: str
    name: str
    update_time: str
    last_price: float
    open_price: float
    high_price: float
    low_price: float
    prev_close_price: float
    volume: int
    turnover: float
    turnover_rate: float
    amplitude: float
    suspension: bool
    #: OpenD's ``listTime`` (the listing date), verbatim.
    listing_date: str
    price_spread: float
    dark_status: DarkStatus = DarkStatus.NA
    sec_status: SecurityStatus = SecurityStatus.NA
    update_timestamp: float | None = None
    listing_timestamp: float | None = None
    #: High-precision volume, when OpenD sends one (the SDK then reports it as ``volume``).
    hp_volume: float | None = None
    option: OptionQuote | None = None
    future: FutureQuote | None = None
    warrant: WarrantQuote | None = None
    pre_market: PreAfterMarket | None = None
    after_market: PreAfterMarket | None = None
    overnight: PreAfterMarket | None = None

    @property
    def datetime(self) -> _dt.datetime | None:
        """The last price update as a timezone-aware UTC datetime (``None`` if not sent)."""
        return utc(self.update_timestamp)

    @property
    def data_date(self) -> str:
        """The date part of ``update_time`` (the SDK's ``data_date``)."""
        parts = self.update_time.split()
        return parts[0] if parts else ""

    @property
    def data_time(self) -> str:
        """The time part of ``update_time``, milliseconds kept (the SDK's ``data_time``)."""
        parts = self.update_time.split()
        return parts[1] if len(parts) > 1 else ""


# ------------------------------------------------------------------------------ decoding

_DARK = lookup(DarkStatus, DarkStatus.NA)
_SEC_STATUS = lookup(SecurityStatus, SecurityStatus.NA)
_AREA = lookup(OptionAreaType, OptionAreaType.NA)
_INDEX_OPTION = lookup(IndexOptionType, IndexOptionType.NA)
_PRE_AFTER = (
    ("price", "price"),
    ("highPrice", "high_price"),
    ("lowPrice", "low_price"),
    ("volume", "volume"),
    ("turnover", "turnover"),
    ("changeVal", "change_val"),
    ("changeRate", "change_rate"),
    ("amplitude", "amplitude"),
)
_OPTION_OPTIONAL = {
    "contractSizeFloat": "contract_size_float",
    "netOpenInterest": "net_open_interest",
    "expiryDateDistance": "expiry_date_distance",
    "contractNominalValue": "contract_nominal_value",
    "ownerLotMultiplier": "owner_lot_multiplier",
    "contractMultiplier": "contract_multiplier",
}


def _pre_after(pb: Any) -> PreAfterMarket:
    has = pb.HasField
    return trusted(
        PreAfterMarket,
        {name: getattr(pb, wire) if has(wire) else None for wire, name in _PRE_AFTER},
    )


def _option(pb: Any) -> OptionQuote:
    fields: dict[str, Any] = {
        "strike_price": pb.strikePrice,
        "contract_size": pb.contractSize,
        "open_interest": pb.openInterest,
        "implied_volatility": pb.impliedVolatility,
        "premium": pb.premium,
        "delta": pb.delta,
        "gamma": pb.gamma,
        "vega": pb.vega,
        "theta": pb.theta,
        "rho": pb.rho,
        "contract_size_float": None,
        "net_open_interest": None,
        "expiry_date_distance": None,
        "contract_nominal_value": None,
        "owner_lot_multiplier": None,
        "option_area_type": OptionAreaType.NA,
        "contract_multiplier": None,
        "index_option_type": IndexOptionType.NA,
    }
    optional = _OPTION_OPTIONAL
    for desc, value in pb.ListFields():
        name = desc.name
        if name in optional:
            fields[optional[name]] = value
        elif name == "optionAreaType":
            fields["option_area_type"] = _AREA(value)
        elif name == "indexOptionType":
            fields["index_option_type"] = _INDEX_OPTION(value)
    return trusted(OptionQuote, fields)


def _future(pb: Any) -> FutureQuote:
    return trusted(
        FutureQuote,
        {
            "last_settle_price": pb.lastSettlePrice,
            "position": pb.position,
            "position_change": pb.positionChange,
            "expiry_date_distance": (
                pb.expiryDateDistance if pb.HasField("expiryDateDistance") else None
            ),
        },
    )


def _warrant(pb: Any) -> WarrantQuote:
    return trusted(
        WarrantQuote,
        {
            "premium": pb.premium,
            "delta": pb.delta if pb.HasField("delta") else None,
            "implied_volatility": (
                pb.impliedVolatility if pb.HasField("impliedVolatility") else None
            ),
        },
    )


def quote_from_pb(pb: Any) -> Quote:
    """The model of one ``BasicQot`` message (an element of a 3004 reply or a 3005 push)."""
    sec = pb.security
    fields: dict[str, Any] = {
        "code": format_code(sec.market, sec.code),
        "name": "N/A",
        "update_time": pb.updateTime,
        "last_price": pb.curPrice,
        "open_price": pb.openPrice,
        "high_price": pb.highPrice,
        "low_price": pb.lowPrice,
        "prev_close_price": pb.lastClosePrice,
        "volume": pb.volume,
        "turnover": pb.turnover,
        "turnover_rate": pb.turnoverRate,
        "amplitude": pb.amplitude,
        "suspension": pb.isSuspended,
        "listing_date": pb.listTime,
        "price_spread": pb.priceSpread,
        "dark_status": DarkStatus.NA,
        "sec_status": SecurityStatus.NA,
        "update_timestamp": None,
        "listing_timestamp": None,
        "hp_volume": None,
        "option": None,
        "future": None,
        "warrant": None,
        "pre_market": None,
        "after_market": None,
        "overnight": None,
    }
    has = pb.HasField
    if has("name"):
        fields["name"] = pb.name
    if has("updateTimestamp"):
        fields["update_timestamp"] = pb.updateTimestamp
    if has("listTimestamp"):
        fields["listing_timestamp"] = pb.listTimestamp
    if has("hpVolume"):
        fields["hp_volume"] = pb.hpVolume
    if has("darkStatus"):
        fields["dark_status"] = _DARK(pb.darkStatus)
    if has("secStatus"):
        fields["sec_status"] = _SEC_STATUS(pb.secStatus)
    if has("optionExData"):
        fields["option"] = _option(pb.optionExData)
    if has("futureExData"):
        fields["future"] = _future(pb.futureExData)
    if has("warrantExData"):
        fields["warrant"] = _warrant(pb.warrantExData)
    if has("preMarket"):
        fields["pre_market"] = _pre_after(pb.preMarket)
    if has("afterMarket"):
        fields["after_market"] = _pre_after(pb.afterMarket)
    if has("overnight"):
        fields["overnight"] = _pre_after(pb.overnight)
    return trusted(Quote, fields)


def quotes_from_s2c(s2c: Any) -> list[Quote]:
    """Every quote of a 3004 reply's or a 3005 push's S2C, in the server's order."""
    return [quote_from_pb(q) for q in s2c.basicQotList]


def quotes_by_code(quotes: Iterable[Quote]) -> dict[str, Quote]:
    """Split a push per security: code -> its quote (the later one wins, as a state does)."""
    return {q.code: q for q in quotes}


# ------------------------------------------------------------------------------ request


def get_basic_qot_request(codes: str | Iterable[str]) -> qot_get_basic_qot_pb2.Request:
    """The 3004 request for ``codes`` (a code or an iterable of codes), de-duplicated in order.

    Raises :class:`~aiofutu.InvalidCode` for a malformed code and
    :class:`~aiofutu.ConfigurationError` for an empty or non-iterable argument.
    """
    if isinstance(codes, str):
        items: list[object] = [codes]
    else:
        try:
            items = list(codes)
        except TypeError:
            raise ConfigurationError(
                f"codes must be a code string or an iterable of code strings, got {codes!r}"
            ) from None
    if not items:
        raise ConfigurationError("codes must name at least one security code")
    req = qot_get_basic_qot_pb2.Request()
    seen: set[object] = set()
    for item in items:
        market, local = parse_code(item)  # raises InvalidCode
        if item in seen:
            continue
        seen.add(item)
        sec = req.c2s.securityList.add()
        sec.market = market.wire
        sec.code = local
    req.c2s.header.securityFirm = 0
    return req


# ------------------------------------------------------------------------------ polars

_GROUPS = ("pre", "after", "overnight")
_PRE_AFTER_COLUMNS = (
    "price",
    "high_price",
    "low_price",
    "volume",
    "turnover",
    "change_val",
    "change_rate",
    "amplitude",
)

#: The SDK's ``get_stock_quote`` columns, in its order (62).
QUOTE_COLUMNS: tuple[str, ...] = (
    "code",
    "name",
    "data_date",
    "data_time",
    "last_price",
    "open_price",
    "high_price",
    "low_price",
    "prev_close_price",
    "volume",
    "turnover",
    "turnover_rate",
    "amplitude",
    "suspension",
    "listing_date",
    "price_spread",
    "dark_status",
    "sec_status",
    "strike_price",
    "contract_size",
    "open_interest",
    "implied_volatility",
    "premium",
    "delta",
    "gamma",
    "vega",
    "theta",
    "rho",
    "net_open_interest",
    "expiry_date_distance",
    "contract_nominal_value",
    "owner_lot_multiplier",
    "option_area_type",
    "contract_multiplier",
    "last_settle_price",
    "position",
    "position_change",
    "index_option_type",
    *(f"{group}_{column}" for group in _GROUPS for column in _PRE_AFTER_COLUMNS),
)

_STRING = frozenset({"code", "name", "data_date", "data_time", "listing_date"})
_INT = frozenset(
    {
        "volume",
        "open_interest",
        "net_open_interest",
        "expiry_date_distance",
        "position",
        "position_change",
        *(f"{group}_volume" for group in _GROUPS),
    }
)
_ENUMS: dict[str, type[Any]] = {
    "dark_status": DarkStatus,
    "sec_status": SecurityStatus,
    "option_area_type": OptionAreaType,
    "index_option_type": IndexOptionType,
}
_schema: dict[str, Any] = {}


def quote_schema() -> dict[str, Any]:
    """The polars schema of :func:`quotes_to_polars` (enum columns as ``pl.Enum``)."""
    if not _schema:
        _schema.update(
            column_schema(
                QUOTE_COLUMNS, enums=_ENUMS, strings=_STRING, bools=("suspension",), ints=_INT
            )
        )
    return dict(_schema)


_NO_GROUP = (None,) * 8
_NO_OPTION = (None,) * 10


def _group(block: PreAfterMarket | None) -> tuple[Any, ...]:
    if block is None:
        return _NO_GROUP
    return (
        block.price,
        block.high_price,
        block.low_price,
        block.volume,
        block.turnover,
        block.change_val,
        block.change_rate,
        block.amplitude,
    )


def _row(q: Quote) -> tuple[Any, ...]:
    o, f = q.option, q.future
    if o is not None:
        option: tuple[Any, ...] = (
            o.strike_price,
            0.0 if o.contract_size_float is None else o.contract_size_float,
            o.open_interest,
            o.implied_volatility,
            o.premium,
            o.delta,
            o.gamma,
            o.vega,
            o.theta,
            o.rho,
        )
        expiry = o.expiry_date_distance
        option_tail: tuple[Any, ...] = (
            o.net_open_interest,
            expiry if expiry is not None or f is None else f.expiry_date_distance,
            o.contract_nominal_value,
            o.owner_lot_multiplier,
            o.option_area_type.value,
            o.contract_multiplier,
        )
        index_option = o.index_option_type.value
    else:
        option = _NO_OPTION
        option_tail = (None, None if f is None else f.expiry_date_distance, None, None, "N/A", None)
        index_option = "N/A"
    future = (
        (None, None, None) if f is None else (f.last_settle_price, f.position, f.position_change)
    )
    return (
        q.code,
        q.name,
        q.data_date,
        q.data_time,
        q.last_price,
        q.open_price,
        q.high_price,
        q.low_price,
        q.prev_close_price,
        _volume(q.volume, q.hp_volume),
        q.turnover,
        q.turnover_rate,
        q.amplitude,
        q.suspension,
        "N/A" if o is not None else q.listing_date,
        q.price_spread,
        q.dark_status.value,
        q.sec_status.value,
        *option,
        *option_tail,
        *future,
        index_option,
        *_group(q.pre_market),
        *_group(q.after_market),
        *_group(q.overnight),
    )


def quotes_to_polars(quotes: Iterable[Quote]) -> pl.DataFrame:
    """A DataFrame of ``quotes`` with exactly the SDK's 62 ``get_stock_quote`` columns."""
    rows = [_row(q) for q in quotes]
    pl_ = _polars()
    return cast("pl.DataFrame", pl_.DataFrame(rows, schema=quote_schema(), orient="row"))
