"""polars DataFrames of ticks, with the official SDK's columns in its order.

polars is an optional extra and is imported here only when a frame is asked for, so
``import aiofutu`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from .codes import format_code
from .enums import PushDataType, TickerDirection, TickerType
from .errors import MissingDependency

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    import polars as pl

    from .models import Ticker

__all__ = ("TICKER_COLUMNS", "to_polars")

#: The official SDK's ``get_rt_ticker`` columns, in its order.
TICKER_COLUMNS = (
    "code",
    "name",
    "time",
    "price",
    "volume",
    "turnover",
    "ticker_direction",
    "sequence",
    "type",
)

_DIRECTION_STR = tuple(TickerDirection.from_wire(i).value for i in range(4))
_TYPE_STR = tuple(TickerType.from_wire(i).value for i in range(32))
_PUSH_STR = tuple(PushDataType.from_wire(i).value for i in range(4))
_NA = "N/A"


def _polars() -> Any:
    try:
        import polars
    except ImportError:
        raise MissingDependency(
            "polars is not installed; install the extra with: pip install 'aiofutu[polars]'"
        ) from None
    return polars


def schema(*, push_data_type: bool = False) -> dict[str, Any]:
    """The frame schema: SDK columns (and ``push_data_type`` last for push frames)."""
    pl = _polars()
    direction = pl.Enum([m.value for m in TickerDirection])
    types = pl.Enum([m.value for m in TickerType])
    out: dict[str, Any] = {
        "code": pl.String,
        "name": pl.String,
        "time": pl.String,
        "price": pl.Float64,
        "volume": pl.Int64,
        "turnover": pl.Float64,
        "ticker_direction": direction,
        "sequence": pl.Int64,
        "type": types,
    }
    if push_data_type:
        out["push_data_type"] = pl.Enum([m.value for m in PushDataType])
    return out


def to_polars(ticks: Iterable[Ticker], *, push_data_type: bool = False) -> pl.DataFrame:
    """A DataFrame of ``ticks`` with exactly the SDK's columns, typed (enums as ``pl.Enum``).

    Like the SDK, ``volume`` is the high-precision volume when OpenD sent one (rounded to int).
    """
    cols: dict[str, list[Any]] = {name: [] for name in TICKER_COLUMNS}
    pdt: list[str] = []
    for t in ticks:
        cols["code"].append(t.code)
        cols["name"].append(t.name)
        cols["time"].append(t.time)
        cols["price"].append(t.price)
        cols["volume"].append(t.volume if t.hp_volume is None else round(t.hp_volume))
        cols["turnover"].append(t.turnover)
        cols["ticker_direction"].append(t.ticker_direction.value)
        cols["sequence"].append(t.sequence)
        cols["type"].append(t.type.value)
        if push_data_type:
            pdt.append(t.push_data_type.value)
    data: dict[str, list[Any]] = dict(cols)
    if push_data_type:
        data["push_data_type"] = pdt
    return cast(
        "pl.DataFrame", _polars().DataFrame(data, schema=schema(push_data_type=push_data_type))
    )


class ColumnBuffer:
    """Accumulates ticks straight from protobuf messages into column lists (no model per tick)."""

    def __init__(self, *, push_data_type: bool = False) -> None:
        self.push_data_type = push_data_type
        self.clear()

    def clear(self) -> None:
        self.rows = 0
        self.code: list[str] = []
        self.name: list[str] = []
        self.time: list[str] = []
        self.price: list[float] = []
        self.volume: list[int] = []
        self.turnover: list[float] = []
        self.direction: list[str] = []
        self.sequence: list[int] = []
        self.type: list[str] = []
        self.pdt: list[str] = []

    def add_pb(self, market: int, code: str, name: str, ticker_list: Sequence[Any]) -> None:
        """Append every ``Qot_Common.Ticker`` of one security."""
        n = len(ticker_list)
        if not n:
            return
        self.rows += n
        self.code.extend([format_code(market, code)] * n)
        self.name.extend([name] * n)
        dirs = _DIRECTION_STR
        types = _TYPE_STR
        time_a = self.time.append
        price_a = self.price.append
        vol_a = self.volume.append
        turn_a = self.turnover.append
        dir_a = self.direction.append
        seq_a = self.sequence.append
        type_a = self.type.append
        pdt_a = self.pdt.append if self.push_data_type else None
        for t in ticker_list:
            time_a(t.time)
            price_a(t.price)
            vol_a(t.volume if not t.HasField("hpVolume") else round(t.hpVolume))
            turn_a(t.turnover)
            d = t.dir
            dir_a(dirs[d] if 0 <= d < 4 else _NA)
            seq_a(t.sequence)
            ty = t.type
            type_a(types[ty] if t.HasField("type") and 0 <= ty < 32 else _NA)
            if pdt_a is not None:
                p = t.pushDataType
                pdt_a(_PUSH_STR[p] if 0 <= p < 4 else _NA)

    def to_frame(self) -> pl.DataFrame:
        """The buffered rows as a DataFrame (the buffer is left as is)."""
        data: dict[str, list[Any]] = {
            "code": self.code,
            "name": self.name,
            "time": self.time,
            "price": self.price,
            "volume": self.volume,
            "turnover": self.turnover,
            "ticker_direction": self.direction,
            "sequence": self.sequence,
            "type": self.type,
        }
        if self.push_data_type:
            data["push_data_type"] = self.pdt
        frame = _polars().DataFrame(data, schema=schema(push_data_type=self.push_data_type))
        return cast("pl.DataFrame", frame)
