"""Market snapshots: ``Qot_GetSecuritySnapshot`` (3203), no subscription needed.

:class:`Snapshot` is one security's full snapshot; its type-specific blocks (``equity``,
``warrant``, ``option``, ``index``, ``plate``, ``future``, ``trust``) are ``None`` unless OpenD
sent them, and every optional figure is ``None`` when absent (the SDK's frame reads many of them
as 0; :func:`snapshots_to_polars`, in :mod:`._snapshot_frame`, reproduces that).

OpenD takes at most :data:`MAX_CODES` codes per request; :meth:`SnapshotAPI.get_market_snapshot`
splits a longer list into requests of that size, sent concurrently, and returns the snapshots
in the order of the codes. OpenD's rate limit for 3203 (60 requests per 30 s) is applied by the
client's request path, not here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from .._pb import qot_get_security_snapshot_pb2
from .._protocol import decode_response
from ..codes import format_code, parse_code
from ..enums import ProtoId
from ..errors import ConfigurationError, RemoteProtocolError
from ..streams import _import_polars
from ._core import as_codes, check_timeout
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
from ._model import trusted
from ._snapshot_models import (
    EquitySnapshot,
    FutureSnapshot,
    IndexSnapshot,
    OptionSnapshot,
    PlateSnapshot,
    Snapshot,
    TrustSnapshot,
    WarrantSnapshot,
)
from .basic import _pre_after

if TYPE_CHECKING:
    from collections.abc import Iterable

    import polars as pl

    from ._core import Core

__all__ = (
    "MAX_CODES",
    "EquitySnapshot",
    "FutureSnapshot",
    "IndexSnapshot",
    "OptionSnapshot",
    "PlateSnapshot",
    "Snapshot",
    "SnapshotAPI",
    "TrustSnapshot",
    "WarrantSnapshot",
    "get_security_snapshot_request",
    "snapshot_from_pb",
    "snapshots_from_s2c",
)

#: Codes per 3203 request at most (OpenD's limit).
MAX_CODES = 400


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


def _chunks(codes: list[str]) -> list[list[str]]:
    return [codes[i : i + MAX_CODES] for i in range(0, len(codes), MAX_CODES)]


def _in_order(codes: list[str], found: dict[str, Snapshot]) -> list[Snapshot]:
    missing = [c for c in codes if c not in found]
    if missing:
        raise RemoteProtocolError(
            f"the snapshot reply lacks {len(missing)} requested code(s): {', '.join(missing[:5])}",
            proto_id=ProtoId.QOT_GET_SECURITY_SNAPSHOT,
            recoverable=True,
        )
    return [found[c] for c in codes]


# ------------------------------------------------------------------------------ verbs


class SnapshotAPI:
    """``get_market_snapshot`` and ``get_market_snapshot_frame``."""

    async def _snapshot_pbs(self: Core, codes: Any, timeout: float | None) -> tuple[list[str], Any]:
        self._check_open()
        items = as_codes(codes)
        check_timeout(timeout)
        requests = [get_security_snapshot_request(chunk) for chunk in _chunks(items)]
        replies: list[Any] = [None] * len(requests)
        proto = ProtoId.QOT_GET_SECURITY_SNAPSHOT
        if len(requests) == 1:
            frame = await self._request_frame(proto, requests[0], timeout)
            replies[0] = _decode(frame.body, frame.serial)
            return items, replies
        failed: list[BaseException] = []

        async def one(i: int, scope: anyio.CancelScope) -> None:
            try:
                frame = await self._request_frame(proto, requests[i], timeout)
                replies[i] = _decode(frame.body, frame.serial)
            except Exception as exc:  # the first failure fails the call, typed (not a group)
                failed.append(exc)
                scope.cancel()

        async with anyio.create_task_group() as tg:
            for i in range(len(requests)):
                tg.start_soon(one, i, tg.cancel_scope)
        if failed:
            raise failed[0]
        return items, replies

    async def get_market_snapshot(
        self: Core, codes: str | Iterable[str], *, timeout: float | None = None
    ) -> list[Snapshot]:
        """The snapshot of each of ``codes`` (any number; no subscription needed), in order.

        The codes are de-duplicated keeping their order. More than 400 are split into requests
        of 400 (OpenD's limit), sent concurrently; the client's rate limiter paces them to
        OpenD's 60 snapshot requests per 30 s. A malformed code raises
        :class:`~aiofutu.InvalidCode` and an empty list :class:`~aiofutu.ConfigurationError`,
        before anything is sent; a code OpenD does not know fails the request
        (:class:`~aiofutu.OpenDError`).
        """
        items, replies = await SnapshotAPI._snapshot_pbs(self, codes, timeout)
        found: dict[str, Snapshot] = {}
        for s2c in replies:
            for snap in snapshots_from_s2c(s2c):
                found[snap.code] = snap
        return _in_order(items, found)

    async def get_market_snapshot_frame(
        self: Core, codes: str | Iterable[str], *, timeout: float | None = None
    ) -> pl.DataFrame:
        """Like :meth:`get_market_snapshot`, as a polars DataFrame with the SDK's 142 columns."""
        from ._snapshot_frame import snapshots_to_polars

        await _import_polars()
        snaps = await SnapshotAPI.get_market_snapshot(self, codes, timeout=timeout)
        return snapshots_to_polars(snaps)


def _decode(body: bytes, serial: int) -> Any:
    rsp = decode_response(
        qot_get_security_snapshot_pb2.Response, body, ProtoId.QOT_GET_SECURITY_SNAPSHOT, serial
    )
    return rsp.s2c
