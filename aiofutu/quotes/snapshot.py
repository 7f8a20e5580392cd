"""Market snapshots: ``Qot_GetSecuritySnapshot`` (3203), no subscription needed.

:class:`Snapshot` is one security's full snapshot; its type-specific blocks (``equity``,
``warrant``, ``option``, ``index``, ``plate``, ``future``, ``trust``) are ``None`` unless OpenD
sent them, and every optional figure is ``None`` when absent (the SDK's frame reads many of them
as 0; :func:`snapshots_to_polars` reproduces that).

OpenD takes at most :data:`MAX_CODES` codes per request; ``client.get_market_snapshot``
(:mod:`.snapshot_api`) splits a longer list into requests of that size, sent concurrently, and
returns the snapshots in the order of the codes. OpenD's rate limit for 3203 (60 requests per
30 s) is applied by the client's request path, not here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._pb import qot_get_security_snapshot_pb2
from ..codes import format_code, parse_code
from ..errors import ConfigurationError
from ._enums import (
    AssetClass,
    IndexOptionType,
    OptionAreaType,
    OptionType,
    PriceType,
    SecurityStatus,
    SecurityType,
    WrtType,
    lookup,
)
from ._model import TrustedModel, trusted, utc
from ._snapshot_frame import SNAPSHOT_COLUMNS, snapshots_to_polars
from .basic import PreAfterMarket, _pre_after

if TYPE_CHECKING:
    import datetime as _dt
    from collections.abc import Iterable

__all__ = (
    "MAX_CODES",
    "SNAPSHOT_COLUMNS",
    "EquitySnapshot",
    "FutureSnapshot",
    "IndexSnapshot",
    "OptionSnapshot",
    "PlateSnapshot",
    "Snapshot",
    "TrustSnapshot",
    "WarrantSnapshot",
    "get_security_snapshot_request",
    "snapshot_from_pb",
    "snapshots_from_s2c",
    "snapshots_to_polars",
)

#: Codes per 3203 request at most (OpenD's limit).
MAX_CODES = 400


class EquitySnapshot(TrustedModel):
    """The stock block (``EquitySnapshotExData``); ratios in percent where OpenD says so."""

    issued_shares: int
    #: ``issuedMarketVal``.
    total_market_val: float
    net_asset: float
    net_profit: float
    earning_per_share: float
    outstanding_shares: int
    #: ``outstandingMarketVal``.
    circular_market_val: float
    net_asset_per_share: float
    #: Percent.
    ey_ratio: float
    pe_ratio: float
    pb_ratio: float
    pe_ttm_ratio: float
    dividend_ttm: float | None = None
    #: Percent.
    dividend_ratio_ttm: float | None = None
    dividend_lfy: float | None = None
    #: Percent.
    dividend_lfy_ratio: float | None = None


class WarrantSnapshot(TrustedModel):
    """The warrant block (``WarrantSnapshotExData``)."""

    conversion_ratio: float
    wrt_type: WrtType
    strike_price: float
    maturity_date: str
    end_trade: str
    #: The underlying's code.
    owner: str
    recovery_price: float
    street_vol: int
    issue_vol: int
    #: Percent.
    street_ratio: float
    delta: float
    implied_volatility: float
    #: Percent.
    premium: float
    maturity_timestamp: float | None = None
    end_trade_timestamp: float | None = None
    leverage: float | None = None
    #: Percent.
    ipop: float | None = None
    break_even_point: float | None = None
    conversion_price: float | None = None
    #: Percent.
    price_recovery_ratio: float | None = None
    score: float | None = None
    upper_strike_price: float | None = None
    lower_strike_price: float | None = None
    inline_price_status: PriceType = PriceType.NA
    issuer_code: str | None = None


class OptionSnapshot(TrustedModel):
    """The option block (``OptionSnapshotExData``; numbered unlike the quote's option block)."""

    option_type: OptionType
    #: The underlying's code.
    owner: str
    strike_time: str
    strike_price: float
    #: The integer contract size (#5); the SDK reports :attr:`contract_size_float` instead.
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
    strike_timestamp: float | None = None
    index_option_type: IndexOptionType = IndexOptionType.NA
    net_open_interest: int | None = None
    #: Days to expiry; negative once expired.
    expiry_date_distance: int | None = None
    contract_nominal_value: float | None = None
    owner_lot_multiplier: float | None = None
    option_area_type: OptionAreaType = OptionAreaType.NA
    contract_multiplier: float | None = None


class IndexSnapshot(TrustedModel):
    """Breadth of an index: constituents up, down and unchanged."""

    raise_count: int
    fall_count: int
    equal_count: int


class PlateSnapshot(IndexSnapshot):
    """Breadth of a plate (sector): constituents up, down and unchanged."""


class FutureSnapshot(TrustedModel):
    """The futures block (``FutureSnapshotExData``)."""

    last_settle_price: float
    position: int
    position_change: int
    last_trade_time: str
    is_main_contract: bool
    last_trade_timestamp: float | None = None


class TrustSnapshot(TrustedModel):
    """The fund block (``TrustSnapshotExData``)."""

    #: Percent.
    dividend_yield: float
    aum: float
    outstanding_units: int
    net_asset_value: float
    #: Percent.
    premium: float
    asset_class: AssetClass


class Snapshot(TrustedModel):
    """The snapshot of one security (``Snapshot``), with the SDK's column names.

    ``volume`` is OpenD's integer volume and ``hp_volume`` the high-precision one when sent (the
    SDK reports the latter as ``volume``); likewise ``ask_vol``/``hp_ask_vol``. Percentages
    (``turnover_rate``, ``amplitude``, ratios) are percent. Optional figures OpenD left out are
    ``None``.
    """

    code: str
    name: str
    security_type: SecurityType
    update_time: str
    last_price: float
    open_price: float
    high_price: float
    low_price: float
    prev_close_price: float
    volume: int
    turnover: float
    turnover_rate: float
    suspension: bool
    #: OpenD's ``listTime``, verbatim.
    listing_date: str
    lot_size: int
    price_spread: float
    sec_status: SecurityStatus = SecurityStatus.NA
    update_timestamp: float | None = None
    listing_timestamp: float | None = None
    hp_volume: float | None = None
    ask_price: float | None = None
    bid_price: float | None = None
    ask_vol: int | None = None
    bid_vol: int | None = None
    hp_ask_vol: float | None = None
    hp_bid_vol: float | None = None
    enable_margin: bool | None = None
    mortgage_ratio: float | None = None
    long_margin_initial_ratio: float | None = None
    enable_short_sell: bool | None = None
    short_sell_rate: float | None = None
    short_available_volume: int | None = None
    short_margin_initial_ratio: float | None = None
    amplitude: float | None = None
    avg_price: float | None = None
    bid_ask_ratio: float | None = None
    volume_ratio: float | None = None
    highest52weeks_price: float | None = None
    lowest52weeks_price: float | None = None
    highest_history_price: float | None = None
    lowest_history_price: float | None = None
    close_price_5min: float | None = None
    pre_market: PreAfterMarket | None = None
    after_market: PreAfterMarket | None = None
    overnight: PreAfterMarket | None = None
    equity: EquitySnapshot | None = None
    warrant: WarrantSnapshot | None = None
    option: OptionSnapshot | None = None
    index: IndexSnapshot | None = None
    plate: PlateSnapshot | None = None
    future: FutureSnapshot | None = None
    trust: TrustSnapshot | None = None

    @property
    def datetime(self) -> _dt.datetime | None:
        """The update time as a timezone-aware UTC datetime (``None`` if not sent)."""
        return utc(self.update_timestamp)


# ------------------------------------------------------------------------------ decoding

_SEC_TYPE = lookup(SecurityType, SecurityType.NA)
_SEC_STATUS = lookup(SecurityStatus, SecurityStatus.NA)
_WRT_TYPE = lookup(WrtType, WrtType.NA)
_PRICE_TYPE = lookup(PriceType, PriceType.NA)
_OPTION_TYPE = lookup(OptionType, OptionType.NA)
_INDEX_OPTION = lookup(IndexOptionType, IndexOptionType.NA)
_AREA = lookup(OptionAreaType, OptionAreaType.NA)
_ASSET = lookup(AssetClass, AssetClass.NA)

#: optional plain fields of SnapshotBasicData: wire name -> model name
_BASIC_OPTIONAL = {
    "name": "name",
    "listTimestamp": "listing_timestamp",
    "updateTimestamp": "update_timestamp",
    "askPrice": "ask_price",
    "bidPrice": "bid_price",
    "askVol": "ask_vol",
    "bidVol": "bid_vol",
    "enableMargin": "enable_margin",
    "mortgageRatio": "mortgage_ratio",
    "longMarginInitialRatio": "long_margin_initial_ratio",
    "enableShortSell": "enable_short_sell",
    "shortSellRate": "short_sell_rate",
    "shortAvailableVolume": "short_available_volume",
    "shortMarginInitialRatio": "short_margin_initial_ratio",
    "amplitude": "amplitude",
    "avgPrice": "avg_price",
    "bidAskRatio": "bid_ask_ratio",
    "volumeRatio": "volume_ratio",
    "highest52WeeksPrice": "highest52weeks_price",
    "lowest52WeeksPrice": "lowest52weeks_price",
    "highestHistoryPrice": "highest_history_price",
    "lowestHistoryPrice": "lowest_history_price",
    "closePrice5Minute": "close_price_5min",
    "hpVolume": "hp_volume",
    "hpAskVol": "hp_ask_vol",
    "hpBidVol": "hp_bid_vol",
}
_BASIC_BLOCKS = {"preMarket": "pre_market", "afterMarket": "after_market", "overnight": "overnight"}
_BASIC_DEFAULTS: dict[str, Any] = {
    **dict.fromkeys(Snapshot.model_fields),  # the declaration order, for repr and dumps
    "name": "N/A",
    "sec_status": SecurityStatus.NA,
    "equity": None,
    "warrant": None,
    "option": None,
    "index": None,
    "plate": None,
    "future": None,
    "trust": None,
}
_WARRANT_OPTIONAL = {
    "maturityTimestamp": "maturity_timestamp",
    "endTradeTimestamp": "end_trade_timestamp",
    "leverage": "leverage",
    "ipop": "ipop",
    "breakEvenPoint": "break_even_point",
    "conversionPrice": "conversion_price",
    "priceRecoveryRatio": "price_recovery_ratio",
    "score": "score",
    "upperStrikePrice": "upper_strike_price",
    "lowerStrikePrice": "lower_strike_price",
    "issuerCode": "issuer_code",
}
_OPTION_OPTIONAL = {
    "contractSizeFloat": "contract_size_float",
    "strikeTimestamp": "strike_timestamp",
    "netOpenInterest": "net_open_interest",
    "expiryDateDistance": "expiry_date_distance",
    "contractNominalValue": "contract_nominal_value",
    "ownerLotMultiplier": "owner_lot_multiplier",
    "contractMultiplier": "contract_multiplier",
}

_WARRANT_ORDER = dict.fromkeys(WarrantSnapshot.model_fields)
_OPTION_ORDER = dict.fromkeys(OptionSnapshot.model_fields)


def _optional(pb: Any, fields: dict[str, Any], table: dict[str, str]) -> None:
    for desc, value in pb.ListFields():
        name = table.get(desc.name)
        if name is not None:
            fields[name] = value


def _equity(pb: Any) -> EquitySnapshot:
    has = pb.HasField
    return trusted(
        EquitySnapshot,
        {
            "issued_shares": pb.issuedShares,
            "total_market_val": pb.issuedMarketVal,
            "net_asset": pb.netAsset,
            "net_profit": pb.netProfit,
            "earning_per_share": pb.earningsPershare,
            "outstanding_shares": pb.outstandingShares,
            "circular_market_val": pb.outstandingMarketVal,
            "net_asset_per_share": pb.netAssetPershare,
            "ey_ratio": pb.eyRate,
            "pe_ratio": pb.peRate,
            "pb_ratio": pb.pbRate,
            "pe_ttm_ratio": pb.peTTMRate,
            "dividend_ttm": pb.dividendTTM if has("dividendTTM") else None,
            "dividend_ratio_ttm": pb.dividendRatioTTM if has("dividendRatioTTM") else None,
            "dividend_lfy": pb.dividendLFY if has("dividendLFY") else None,
            "dividend_lfy_ratio": pb.dividendLFYRatio if has("dividendLFYRatio") else None,
        },
    )


def _warrant(pb: Any) -> WarrantSnapshot:
    owner = pb.owner
    fields: dict[str, Any] = {
        **_WARRANT_ORDER,
        "conversion_ratio": pb.conversionRate,
        "wrt_type": _WRT_TYPE(pb.warrantType),
        "strike_price": pb.strikePrice,
        "maturity_date": pb.maturityTime,
        "end_trade": pb.endTradeTime,
        "owner": format_code(owner.market, owner.code),
        "recovery_price": pb.recoveryPrice,
        "street_vol": pb.streetVolumn,
        "issue_vol": pb.issueVolumn,
        "street_ratio": pb.streetRate,
        "delta": pb.delta,
        "implied_volatility": pb.impliedVolatility,
        "premium": pb.premium,
        **dict.fromkeys(_WARRANT_OPTIONAL.values()),
        "inline_price_status": PriceType.NA,
    }
    _optional(pb, fields, _WARRANT_OPTIONAL)
    if pb.HasField("inLinePriceStatus"):
        fields["inline_price_status"] = _PRICE_TYPE(pb.inLinePriceStatus)
    return trusted(WarrantSnapshot, fields)


def _option(pb: Any) -> OptionSnapshot:
    owner = pb.owner
    fields: dict[str, Any] = {
        **_OPTION_ORDER,
        "option_type": _OPTION_TYPE(pb.type),
        "owner": format_code(owner.market, owner.code),
        "strike_time": pb.strikeTime,
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
        **dict.fromkeys(_OPTION_OPTIONAL.values()),
        "index_option_type": IndexOptionType.NA,
        "option_area_type": OptionAreaType.NA,
    }
    _optional(pb, fields, _OPTION_OPTIONAL)
    if pb.HasField("indexOptionType"):
        fields["index_option_type"] = _INDEX_OPTION(pb.indexOptionType)
    if pb.HasField("optionAreaType"):
        fields["option_area_type"] = _AREA(pb.optionAreaType)
    return trusted(OptionSnapshot, fields)


def _breadth(cls: type[IndexSnapshot], pb: Any) -> Any:
    return trusted(
        cls,
        {"raise_count": pb.raiseCount, "fall_count": pb.fallCount, "equal_count": pb.equalCount},
    )


def _future(pb: Any) -> FutureSnapshot:
    return trusted(
        FutureSnapshot,
        {
            "last_settle_price": pb.lastSettlePrice,
            "position": pb.position,
            "position_change": pb.positionChange,
            "last_trade_time": pb.lastTradeTime,
            "is_main_contract": pb.isMainContract,
            "last_trade_timestamp": (
                pb.lastTradeTimestamp if pb.HasField("lastTradeTimestamp") else None
            ),
        },
    )


def _trust(pb: Any) -> TrustSnapshot:
    return trusted(
        TrustSnapshot,
        {
            "dividend_yield": pb.dividendYield,
            "aum": pb.aum,
            "outstanding_units": pb.outstandingUnits,
            "net_asset_value": pb.netAssetValue,
            "premium": pb.premium,
            "asset_class": _ASSET(pb.assetClass),
        },
    )


_BASIC_OPTIONAL_ITEMS = tuple(_BASIC_OPTIONAL.items())
_BASIC_BLOCK_ITEMS = tuple(_BASIC_BLOCKS.items())
_BLOCKS: tuple[tuple[str, str, Any], ...] = (
    ("equityExData", "equity", _equity),
    ("warrantExData", "warrant", _warrant),
    ("optionExData", "option", _option),
    ("indexExData", "index", lambda pb: _breadth(IndexSnapshot, pb)),
    ("plateExData", "plate", lambda pb: _breadth(PlateSnapshot, pb)),
    ("futureExData", "future", _future),
    ("trustExData", "trust", _trust),
)


def snapshot_from_pb(pb: Any) -> Snapshot:
    """The model of one ``Snapshot`` message (an element of a 3203 reply)."""
    b = pb.basic
    sec = b.security
    fields = dict(_BASIC_DEFAULTS)
    fields.update(
        code=format_code(sec.market, sec.code),
        security_type=_SEC_TYPE(b.type),
        update_time=b.updateTime,
        last_price=b.curPrice,
        open_price=b.openPrice,
        high_price=b.highPrice,
        low_price=b.lowPrice,
        prev_close_price=b.lastClosePrice,
        volume=b.volume,
        turnover=b.turnover,
        turnover_rate=b.turnoverRate,
        suspension=b.isSuspend,
        listing_date=b.listTime,
        lot_size=b.lotSize,
        price_spread=b.priceSpread,
    )
    has = b.HasField
    for wire, name in _BASIC_OPTIONAL_ITEMS:
        if has(wire):
            fields[name] = getattr(b, wire)
    if has("secStatus"):
        fields["sec_status"] = _SEC_STATUS(b.secStatus)
    for wire, name in _BASIC_BLOCK_ITEMS:
        if has(wire):
            fields[name] = _pre_after(getattr(b, wire))
    has = pb.HasField
    for wire, name, build in _BLOCKS:
        if has(wire):
            fields[name] = build(getattr(pb, wire))
    return trusted(Snapshot, fields)


def snapshots_from_s2c(s2c: Any) -> list[Snapshot]:
    """Every snapshot of a 3203 reply's S2C, in the server's order."""
    return [snapshot_from_pb(s) for s in s2c.snapshotList]


# ------------------------------------------------------------------------------ request


def get_security_snapshot_request(
    codes: Iterable[str],
) -> qot_get_security_snapshot_pb2.Request:
    """The 3203 request for ``codes`` (already checked and de-duplicated), at most 400."""
    req = qot_get_security_snapshot_pb2.Request()
    add = req.c2s.securityList.add
    for code in codes:
        market, local = parse_code(code)
        add(market=market.wire, code=local)
    if len(req.c2s.securityList) > MAX_CODES:
        raise ConfigurationError(f"at most {MAX_CODES} codes per snapshot request")
    req.c2s.header.securityFirm = 0
    return req
