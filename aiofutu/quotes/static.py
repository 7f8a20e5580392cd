"""Static information of securities: ``Qot_GetStaticInfo`` (3202), no subscription needed.

By market and security type (every security of that market and type) or by code list; with a
code list the request carries market 0 and type 0, as the SDK sends it, and OpenD ignores them.
OpenD answers an unknown or long-delisted code with a placeholder row (name "unknown stock"),
not an error. polars form: :func:`static_infos_to_polars` has the 17 columns of the SDK's
``get_stock_basicinfo`` in its order, with its rules (``N/A`` enum strings, null where the SDK
shows ``N/A`` in a numeric or boolean column, ``''`` defaults for the option and future times).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from .._pb import qot_get_static_info_pb2
from .._protocol import decode_response
from ..codes import format_code, parse_code
from ..enums import Market, ProtoId
from ..errors import ConfigurationError
from ..frames import _polars, column_schema
from ..streams import _import_polars
from ._core import as_codes, check_timeout
from ._enums import ExchType, IndexOptionType, OptionType, SecurityType, WrtType, lookup
from ._model import TrustedModel, trusted

if TYPE_CHECKING:
    from collections.abc import Iterable

    import polars as pl

    from ._core import Core

__all__ = (
    "STATIC_INFO_COLUMNS",
    "FutureStatic",
    "OptionStatic",
    "StaticAPI",
    "StaticInfo",
    "WarrantStatic",
    "get_static_info_request",
    "static_infos_from_s2c",
    "static_infos_to_polars",
)


class WarrantStatic(TrustedModel):
    """A warrant's type and underlying."""

    wrt_type: WrtType
    #: The underlying's code.
    owner: str


class OptionStatic(TrustedModel):
    """An option's static terms (``OptionStaticExData``)."""

    option_type: OptionType
    #: The underlying's code.
    owner: str
    strike_time: str
    strike_price: float
    suspension: bool
    #: OpenD's market string of the option, verbatim.
    market: str
    strike_timestamp: float | None = None
    index_option_type: IndexOptionType = IndexOptionType.NA
    expiration_cycle: int | None = None
    option_standard_type: int | None = None
    option_settlement_mode: int | None = None


class FutureStatic(TrustedModel):
    """A future's last trading day and whether it is the main (continuous) contract."""

    last_trade_time: str
    is_main_contract: bool
    last_trade_timestamp: float | None = None


class StaticInfo(TrustedModel):
    """The static facts of one security (``SecurityStaticInfo``), with the SDK's names."""

    code: str
    name: str
    #: Shares per lot (the contract multiplier for options and futures).
    lot_size: int
    security_type: SecurityType
    stock_id: int
    #: OpenD's ``listTime``, verbatim (OpenD no longer maintains it).
    listing_date: str
    delisting: bool | None = None
    listing_timestamp: float | None = None
    exchange_type: ExchType = ExchType.NA
    warrant: WarrantStatic | None = None
    option: OptionStatic | None = None
    future: FutureStatic | None = None


# ------------------------------------------------------------------------------ decoding

_SEC_TYPE = lookup(SecurityType, SecurityType.NA)
_WRT_TYPE = lookup(WrtType, WrtType.NA)
_OPTION_TYPE = lookup(OptionType, OptionType.NA)
_INDEX_OPTION = lookup(IndexOptionType, IndexOptionType.NA)
_EXCH = lookup(ExchType, ExchType.NA)


def _opt(pb: Any, name: str) -> Any:
    return getattr(pb, name) if pb.HasField(name) else None


def _option(pb: Any) -> OptionStatic:
    owner = pb.owner
    return trusted(
        OptionStatic,
        {
            "option_type": _OPTION_TYPE(pb.type),
            "owner": format_code(owner.market, owner.code),
            "strike_time": pb.strikeTime,
            "strike_price": pb.strikePrice,
            "suspension": pb.suspend,
            "market": pb.market,
            "strike_timestamp": _opt(pb, "strikeTimestamp"),
            "index_option_type": _INDEX_OPTION(pb.indexOptionType),
            "expiration_cycle": _opt(pb, "expirationCycle"),
            "option_standard_type": _opt(pb, "optionStandardType"),
            "option_settlement_mode": _opt(pb, "optionSettlementMode"),
        },
    )


def static_info_from_pb(pb: Any) -> StaticInfo:
    """The model of one ``SecurityStaticInfo`` message."""
    b = pb.basic
    sec = b.security
    has = pb.HasField
    warrant = future = option = None
    if has("warrantExData"):
        w = pb.warrantExData
        warrant = trusted(
            WarrantStatic,
            {
                "wrt_type": _WRT_TYPE(w.type),
                "owner": format_code(w.owner.market, w.owner.code),
            },
        )
    if has("optionExData"):
        option = _option(pb.optionExData)
    if has("futureExData"):
        f = pb.futureExData
        future = trusted(
            FutureStatic,
            {
                "last_trade_time": f.lastTradeTime,
                "is_main_contract": f.isMainContract,
                "last_trade_timestamp": _opt(f, "lastTradeTimestamp"),
            },
        )
    return trusted(
        StaticInfo,
        {
            "code": format_code(sec.market, sec.code),
            "name": b.name,
            "lot_size": b.lotSize,
            "security_type": _SEC_TYPE(b.secType),
            "stock_id": b.id,
            "listing_date": b.listTime,
            "delisting": _opt(b, "delisting"),
            "listing_timestamp": _opt(b, "listTimestamp"),
            "exchange_type": _EXCH(b.exchType) if b.HasField("exchType") else ExchType.NA,
            "warrant": warrant,
            "option": option,
            "future": future,
        },
    )


def static_infos_from_s2c(s2c: Any) -> list[StaticInfo]:
    """Every row of a 3202 reply's S2C, in the server's order."""
    return [static_info_from_pb(item) for item in s2c.staticInfoList]


# ------------------------------------------------------------------------------ request


def _market(market: object) -> Market:
    try:
        member = Market.coerce(market)
    except ValueError:
        member = None
    if member is None or member is Market.NONE:
        names = ", ".join(m.name for m in Market if m is not Market.NONE)
        raise ConfigurationError(f"unknown market {market!r}; use one of {names}")
    return member


def _sec_type(sec_type: object) -> SecurityType:
    try:
        member = SecurityType.coerce(sec_type)
    except ValueError:
        member = None
    if member is None or member is SecurityType.NA:
        names = ", ".join(m.name for m in SecurityType if m is not SecurityType.NA)
        raise ConfigurationError(f"unknown security type {sec_type!r}; use one of {names}")
    if member is SecurityType.DRVT:
        raise ConfigurationError(
            "OpenD does not list options (DRVT) market-wide; pass codes=[...] instead"
        )
    return member


def get_static_info_request(
    market: Market | str | None = None,
    sec_type: SecurityType | str = SecurityType.STOCK,
    codes: str | Iterable[str] | None = None,
) -> qot_get_static_info_pb2.Request:
    """The 3202 request: by ``codes`` (market and type then sent as 0), else by market and type.

    Raises :class:`~aiofutu.ConfigurationError` for an unknown market or type (or ``DRVT``
    market-wide) and :class:`~aiofutu.InvalidCode` for a malformed code, before sending.
    """
    req = qot_get_static_info_pb2.Request()
    c2s = req.c2s
    if codes is not None:
        c2s.market = 0
        c2s.secType = 0
        add = c2s.securityList.add
        for code in as_codes(codes):
            m, local = parse_code(code)
            add(market=m.wire, code=local)
    else:
        c2s.market = _market(market).wire
        c2s.secType = _sec_type(sec_type).wire
    c2s.header.securityFirm = 0
    return req


# ------------------------------------------------------------------------------ polars

#: The SDK's ``get_stock_basicinfo`` columns, in its order (17).
STATIC_INFO_COLUMNS: tuple[str, ...] = (
    "code",
    "name",
    "lot_size",
    "stock_type",
    "stock_child_type",
    "stock_owner",
    "option_type",
    "strike_time",
    "strike_price",
    "suspension",
    "listing_date",
    "stock_id",
    "delisting",
    "index_option_type",
    "main_contract",
    "last_trade_time",
    "exchange_type",
)
_ENUMS: dict[str, type[Any]] = {
    "stock_type": SecurityType,
    "stock_child_type": WrtType,
    "option_type": OptionType,
    "index_option_type": IndexOptionType,
    "exchange_type": ExchType,
}
_schema: dict[str, Any] = {}


def static_info_schema() -> dict[str, Any]:
    """The polars schema of :func:`static_infos_to_polars`."""
    if not _schema:
        _schema.update(
            column_schema(
                STATIC_INFO_COLUMNS,
                enums=_ENUMS,
                bools=("suspension", "delisting", "main_contract"),
                ints=("lot_size", "stock_id"),
                floats=("strike_price",),
                default="String",
            )
        )
    return dict(_schema)


def _row(s: StaticInfo) -> tuple[Any, ...]:
    w, o, f = s.warrant, s.option, s.future
    owner = w.owner if w is not None else (o.owner if o is not None else "")
    return (
        s.code,
        s.name,
        s.lot_size,
        s.security_type.value,
        "N/A" if w is None else w.wrt_type.value,
        owner,
        "N/A" if o is None else o.option_type.value,
        "" if o is None else o.strike_time,
        None if o is None else o.strike_price,
        None if o is None else o.suspension,
        "N/A" if o is not None else s.listing_date,
        s.stock_id,
        s.delisting,
        "N/A" if o is None else o.index_option_type.value,
        False if f is None else f.is_main_contract,
        "" if f is None else f.last_trade_time,
        s.exchange_type.value,
    )


def static_infos_to_polars(infos: Iterable[StaticInfo]) -> pl.DataFrame:
    """A DataFrame of ``infos`` with exactly the SDK's 17 ``get_stock_basicinfo`` columns."""
    rows = [_row(s) for s in infos]
    pl_ = _polars()
    return cast("pl.DataFrame", pl_.DataFrame(rows, schema=static_info_schema(), orient="row"))


# ------------------------------------------------------------------------------ verbs


class StaticAPI:
    """``get_stock_basicinfo`` and ``get_stock_basicinfo_frame``."""

    async def get_stock_basicinfo(
        self: Core,
        market: Market | str | None,
        sec_type: SecurityType | str = SecurityType.STOCK,
        codes: str | Iterable[str] | None = None,
        *,
        timeout: float | None = None,
    ) -> list[StaticInfo]:
        """Static facts (name, lot, type, listing, owner) of securities; no subscription needed.

        Every security of ``market`` (``"HK"``, :class:`~aiofutu.Market`) and ``sec_type``
        (``"STOCK"``, ``"ETF"``, ``"IDX"``, :class:`SecurityType` ...), or, with ``codes``, those
        securities (market and type are then ignored, as in the SDK). An unknown code is not an
        error: OpenD answers with a placeholder row named "unknown stock".
        """
        self._check_open()
        req = get_static_info_request(market, sec_type, codes)
        check_timeout(timeout)
        frame = await self._request_frame(ProtoId.QOT_GET_STATIC_INFO, req, timeout)
        rsp = decode_response(
            qot_get_static_info_pb2.Response, frame.body, ProtoId.QOT_GET_STATIC_INFO, frame.serial
        )
        return static_infos_from_s2c(rsp.s2c)

    async def get_stock_basicinfo_frame(
        self: Core,
        market: Market | str | None,
        sec_type: SecurityType | str = SecurityType.STOCK,
        codes: str | Iterable[str] | None = None,
        *,
        timeout: float | None = None,
    ) -> pl.DataFrame:
        """Like :meth:`get_stock_basicinfo`, as a polars DataFrame with the SDK's 17 columns."""
        await _import_polars()
        infos = await StaticAPI.get_stock_basicinfo(self, market, sec_type, codes, timeout=timeout)
        return static_infos_to_polars(infos)
