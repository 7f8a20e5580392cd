"""The polars form of snapshots: exactly the 142 columns of the SDK's ``get_market_snapshot``.

The SDK's quirks are kept where they change values, so a migrated screen reads the same:

* ``volume``, ``ask_vol`` and ``bid_vol`` are the high-precision figures when OpenD sends them
  (rounded to integers, as in the quote frame);
* amplitude, average price, the ratios, the 52-week and all-time highs and lows,
  ``close_price_5min``, ``after_volume`` and ``after_turnover`` are read without a presence check
  (absent is 0);
* ``wrt_valid``, ``option_valid`` and ``future_valid`` follow the security type (5, 8, 10), and
  their groups then show the protocol's defaults when OpenD sent no block; the other groups'
  flags mean "block present";
* a group whose flag is false is null (the SDK's NaN), and so is every numeric field the SDK
  shows as ``N/A``; enum columns hold the SDK's strings (``N/A`` when absent) on every row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from ..frames import _polars, _volume, column_schema
from ._enums import (
    AssetClass,
    IndexOptionType,
    OptionAreaType,
    OptionType,
    PriceType,
    SecurityStatus,
    SecurityType,
    WrtType,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    import polars as pl

    from .basic import PreAfterMarket
    from .snapshot import Snapshot

__all__ = ("SNAPSHOT_COLUMNS", "snapshot_schema", "snapshots_to_polars")

_BASE = (
    "code",
    "name",
    "update_time",
    "last_price",
    "open_price",
    "high_price",
    "low_price",
    "prev_close_price",
    "volume",
    "turnover",
    "turnover_rate",
    "suspension",
    "listing_date",
    "lot_size",
    "price_spread",
    "stock_owner",
    "ask_price",
    "bid_price",
    "ask_vol",
    "bid_vol",
    "enable_margin",
    "mortgage_ratio",
    "long_margin_initial_ratio",
    "enable_short_sell",
    "short_sell_rate",
    "short_available_volume",
    "short_margin_initial_ratio",
    "amplitude",
    "avg_price",
    "bid_ask_ratio",
    "volume_ratio",
    "highest52weeks_price",
    "lowest52weeks_price",
    "highest_history_price",
    "lowest_history_price",
    "close_price_5min",
    "after_volume",
    "after_turnover",
    "sec_status",
)
_EQUITY = (
    "equity_valid",
    "issued_shares",
    "total_market_val",
    "net_asset",
    "net_profit",
    "earning_per_share",
    "outstanding_shares",
    "circular_market_val",
    "net_asset_per_share",
    "ey_ratio",
    "pe_ratio",
    "pb_ratio",
    "pe_ttm_ratio",
    "dividend_ttm",
    "dividend_ratio_ttm",
    "dividend_lfy",
    "dividend_lfy_ratio",
)
_WARRANT = (
    "wrt_valid",
    "wrt_conversion_ratio",
    "wrt_type",
    "wrt_strike_price",
    "wrt_maturity_date",
    "wrt_end_trade",
    "wrt_recovery_price",
    "wrt_street_vol",
    "wrt_issue_vol",
    "wrt_street_ratio",
    "wrt_delta",
    "wrt_implied_volatility",
    "wrt_premium",
    "wrt_leverage",
    "wrt_ipop",
    "wrt_break_even_point",
    "wrt_conversion_price",
    "wrt_price_recovery_ratio",
    "wrt_score",
    "wrt_upper_strike_price",
    "wrt_lower_strike_price",
    "wrt_inline_price_status",
    "wrt_issuer_code",
)
_OPTION = (
    "option_valid",
    "option_type",
    "strike_time",
    "option_strike_price",
    "option_contract_size",
    "option_open_interest",
    "option_implied_volatility",
    "option_premium",
    "option_delta",
    "option_gamma",
    "option_vega",
    "option_theta",
    "option_rho",
    "option_net_open_interest",
    "option_expiry_date_distance",
    "option_contract_nominal_value",
    "option_owner_lot_multiplier",
    "option_area_type",
    "option_contract_multiplier",
    "index_option_type",
)
_BREADTH = ("valid", "raise_count", "fall_count", "equal_count")
_FUTURE = (
    "future_valid",
    "future_last_settle_price",
    "future_position",
    "future_position_change",
    "future_main_contract",
    "future_last_trade_time",
)
_TRUST = (
    "trust_valid",
    "trust_dividend_yield",
    "trust_aum",
    "trust_outstanding_units",
    "trust_netAssetValue",
    "trust_premium",
    "trust_assetClass",
)
_SESSION = (
    "price",
    "high_price",
    "low_price",
    "volume",
    "turnover",
    "change_val",
    "change_rate",
    "amplitude",
)
_AFTER = tuple(c for c in _SESSION if c not in ("volume", "turnover"))

#: The SDK's ``get_market_snapshot`` columns, in its order (142).
SNAPSHOT_COLUMNS: tuple[str, ...] = (
    *_BASE,
    *_EQUITY,
    *_WARRANT,
    *_OPTION,
    *(f"index_{c}" for c in _BREADTH),
    *(f"plate_{c}" for c in _BREADTH),
    *_FUTURE,
    *_TRUST,
    *(f"pre_{c}" for c in _SESSION),
    *(f"after_{c}" for c in _AFTER),
    *(f"overnight_{c}" for c in _SESSION),
)

_STRING = frozenset(
    {
        "code",
        "name",
        "update_time",
        "listing_date",
        "stock_owner",
        "wrt_maturity_date",
        "wrt_end_trade",
        "wrt_issuer_code",
        "strike_time",
        "future_last_trade_time",
    }
)
_BOOL = frozenset(
    {"suspension", "enable_margin", "enable_short_sell", "future_main_contract"}
    | {c for c in SNAPSHOT_COLUMNS if c.endswith("_valid")}
)
_INT = frozenset(
    {
        "volume",
        "lot_size",
        "ask_vol",
        "bid_vol",
        "short_available_volume",
        "after_volume",
        "issued_shares",
        "outstanding_shares",
        "wrt_street_vol",
        "wrt_issue_vol",
        "option_open_interest",
        "option_net_open_interest",
        "option_expiry_date_distance",
        "index_raise_count",
        "index_fall_count",
        "index_equal_count",
        "plate_raise_count",
        "plate_fall_count",
        "plate_equal_count",
        "future_position",
        "future_position_change",
        "trust_outstanding_units",
        "pre_volume",
        "overnight_volume",
    }
)
_ENUMS: dict[str, type[Any]] = {
    "sec_status": SecurityStatus,
    "wrt_type": WrtType,
    "wrt_inline_price_status": PriceType,
    "option_type": OptionType,
    "option_area_type": OptionAreaType,
    "index_option_type": IndexOptionType,
    "trust_assetClass": AssetClass,
}
_schema: dict[str, Any] = {}


def snapshot_schema() -> dict[str, Any]:
    """The polars schema of :func:`snapshots_to_polars` (enum columns as ``pl.Enum``)."""
    if not _schema:
        _schema.update(
            column_schema(SNAPSHOT_COLUMNS, enums=_ENUMS, strings=_STRING, bools=_BOOL, ints=_INT)
        )
    return dict(_schema)


def _z(value: Any) -> Any:
    """A figure the SDK reads without a presence check: absent is 0."""
    return 0.0 if value is None else value


_NO_EQUITY = (False, *(None,) * 16)
_NO_WARRANT_TAIL = (None,) * 20
_NO_OPTION_TAIL = (None,) * 15
_NO_BREADTH = (False, None, None, None)
_NO_FUTURE = (False, *(None,) * 5)
_NO_SESSION = (None,) * 8
_NO_AFTER = (None,) * 6
_DEFAULT_FUTURE = (True, 0.0, 0, 0, False, "")


def _session(block: PreAfterMarket | None) -> tuple[Any, ...]:
    if block is None:
        return _NO_SESSION
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


def _after(block: PreAfterMarket | None) -> tuple[Any, ...]:
    if block is None:
        return _NO_AFTER
    return (
        block.price,
        block.high_price,
        block.low_price,
        block.change_val,
        block.change_rate,
        block.amplitude,
    )


def _hp(volume: int | None, hp: float | None) -> int | None:
    if hp is not None:
        return _volume(0 if volume is None else volume, hp)
    return volume


def _row(s: Snapshot) -> tuple[Any, ...]:
    kind = s.security_type
    w, o, e, f, t = s.warrant, s.option, s.equity, s.future, s.trust
    owner = None
    if kind is SecurityType.WARRANT:
        owner = w.owner if w is not None else "N/A."
    elif kind is SecurityType.DRVT:
        owner = o.owner if o is not None else "N/A."
    margin = s.enable_margin is True
    short = s.enable_short_sell is True
    after = s.after_market
    base = (
        s.code,
        s.name,
        s.update_time,
        s.last_price,
        s.open_price,
        s.high_price,
        s.low_price,
        s.prev_close_price,
        _volume(s.volume, s.hp_volume),
        s.turnover,
        s.turnover_rate,
        s.suspension,
        "N/A" if o is not None else s.listing_date,
        s.lot_size,
        s.price_spread,
        owner,
        s.ask_price,
        s.bid_price,
        _hp(s.ask_vol, s.hp_ask_vol),
        _hp(s.bid_vol, s.hp_bid_vol),
        s.enable_margin,
        _z(s.mortgage_ratio) if margin else None,
        _z(s.long_margin_initial_ratio) if margin else None,
        s.enable_short_sell,
        _z(s.short_sell_rate) if short else None,
        (0 if s.short_available_volume is None else s.short_available_volume) if short else None,
        _z(s.short_margin_initial_ratio) if short else None,
        _z(s.amplitude),
        _z(s.avg_price),
        _z(s.bid_ask_ratio),
        _z(s.volume_ratio),
        _z(s.highest52weeks_price),
        _z(s.lowest52weeks_price),
        _z(s.highest_history_price),
        _z(s.lowest_history_price),
        _z(s.close_price_5min),
        0 if after is None or after.volume is None else after.volume,
        0.0 if after is None or after.turnover is None else after.turnover,
        s.sec_status.value,
    )
    equity = (
        _NO_EQUITY
        if e is None
        else (
            True,
            e.issued_shares,
            e.total_market_val,
            e.net_asset,
            e.net_profit,
            e.earning_per_share,
            e.outstanding_shares,
            e.circular_market_val,
            e.net_asset_per_share,
            e.ey_ratio,
            e.pe_ratio,
            e.pb_ratio,
            e.pe_ttm_ratio,
            _z(e.dividend_ttm),
            _z(e.dividend_ratio_ttm),
            _z(e.dividend_lfy),
            _z(e.dividend_lfy_ratio),
        )
    )
    wrt_type = w.wrt_type.value if w is not None else "N/A"
    inline = w.inline_price_status.value if w is not None else "N/A"
    if kind is not SecurityType.WARRANT:
        warrant: tuple[Any, ...] = (False, None, wrt_type, *(None,) * 18, inline, None)
    elif w is None:
        warrant = (True, 0.0, wrt_type, 0.0, "", "", 0.0, 0, 0, *(0.0,) * 12, inline, "")
    else:
        warrant = (
            True,
            w.conversion_ratio,
            wrt_type,
            w.strike_price,
            w.maturity_date,
            w.end_trade,
            w.recovery_price,
            w.street_vol,
            w.issue_vol,
            w.street_ratio,
            w.delta,
            w.implied_volatility,
            w.premium,
            _z(w.leverage),
            _z(w.ipop),
            _z(w.break_even_point),
            _z(w.conversion_price),
            _z(w.price_recovery_ratio),
            _z(w.score),
            _z(w.upper_strike_price),
            _z(w.lower_strike_price),
            inline,
            "" if w.issuer_code is None else w.issuer_code,
        )
    option_type = o.option_type.value if o is not None else "N/A"
    area = o.option_area_type.value if o is not None else "N/A"
    index_option = o.index_option_type.value if o is not None else "N/A"
    if kind is not SecurityType.DRVT:
        option: tuple[Any, ...] = (False, option_type, *_NO_OPTION_TAIL, area, None, index_option)
    elif o is None:
        option = (True, option_type, "", *(0.0,) * 2, 0, *(0.0,) * 7, *(None,) * 4, area)
        option += (None, index_option)
    else:
        option = (
            True,
            option_type,
            o.strike_time,
            o.strike_price,
            _z(o.contract_size_float),
            o.open_interest,
            o.implied_volatility,
            o.premium,
            o.delta,
            o.gamma,
            o.vega,
            o.theta,
            o.rho,
            o.net_open_interest,
            o.expiry_date_distance,
            o.contract_nominal_value,
            o.owner_lot_multiplier,
            area,
            o.contract_multiplier,
            index_option,
        )
    i, p = s.index, s.plate
    index = _NO_BREADTH if i is None else (True, i.raise_count, i.fall_count, i.equal_count)
    plate = _NO_BREADTH if p is None else (True, p.raise_count, p.fall_count, p.equal_count)
    if kind is not SecurityType.FUTURE:
        future: tuple[Any, ...] = _NO_FUTURE
    elif f is None:
        future = _DEFAULT_FUTURE
    else:
        future = (
            True,
            f.last_settle_price,
            f.position,
            f.position_change,
            f.is_main_contract,
            f.last_trade_time,
        )
    if t is None:
        trust: tuple[Any, ...] = (False, None, None, None, None, None, "N/A")
    else:
        trust = (
            True,
            t.dividend_yield,
            t.aum,
            t.outstanding_units,
            t.net_asset_value,
            t.premium,
            t.asset_class.value,
        )
    return (
        *base,
        *equity,
        *warrant,
        *option,
        *index,
        *plate,
        *future,
        *trust,
        *_session(s.pre_market),
        *_after(after),
        *_session(s.overnight),
    )


def snapshots_to_polars(snapshots: Iterable[Snapshot]) -> pl.DataFrame:
    """A DataFrame of ``snapshots`` with exactly the SDK's 142 ``get_market_snapshot`` columns."""
    rows = [_row(s) for s in snapshots]
    pl_ = _polars()
    schema = snapshot_schema()
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(SNAPSHOT_COLUMNS)
    # a typed Series per column is several times faster than polars' row orientation here
    series = [
        pl_.Series(name, values, dtype=schema[name])
        for name, values in zip(SNAPSHOT_COLUMNS, columns, strict=True)
    ]
    return cast("pl.DataFrame", pl_.DataFrame(series))
