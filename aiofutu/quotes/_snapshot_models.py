"""The snapshot models (3203); see :mod:`aiofutu.quotes.snapshot` for how they are built."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
from ._model import TrustedModel, utc
from .basic import PreAfterMarket  # noqa: TC001 (pydantic needs it at runtime)

if TYPE_CHECKING:
    import datetime as _dt

__all__ = (
    "EquitySnapshot",
    "FutureSnapshot",
    "IndexSnapshot",
    "OptionSnapshot",
    "PlateSnapshot",
    "Snapshot",
    "TrustSnapshot",
    "WarrantSnapshot",
)


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
