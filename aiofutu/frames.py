"""polars DataFrames of ticks, with the official SDK's columns in its order.

polars is an optional extra and is imported here only when a frame is asked for, so
``import aiofutu`` stays light.
"""

from __future__ import annotations

from operator import attrgetter
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

_DIRECTION_STR = [TickerDirection.from_wire(i).value for i in range(4)]
_TYPE_STR = [TickerType.from_wire(i).value for i in range(32)]
_PUSH_STR = [PushDataType.from_wire(i).value for i in range(4)]
_NA = "N/A"


def _polars() -> Any:
    try:
        import polars
    except ImportError:
        raise MissingDependency(
            "polars is not installed; install the extra with: pip install 'aiofutu[polars]'"
        ) from None
    return polars


_schemas: dict[bool, dict[str, Any]] = {}


def schema(*, push_data_type: bool = False) -> dict[str, Any]:
    """The frame schema: SDK columns (and ``push_data_type`` last for push frames)."""
    cached = _schemas.get(push_data_type)
    if cached is None:
        cached = _schemas[push_data_type] = _build_schema(push_data_type)
    return dict(cached)


def _build_schema(push_data_type: bool) -> dict[str, Any]:
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


_ROW = attrgetter("time", "price", "volume", "turnover", "dir", "sequence", "type", "pushDataType")


class ColumnBuffer:
    """Accumulates ticks straight from protobuf messages into rows (no model per tick).

    Each tick costs one C-level ``attrgetter`` call; the transpose, the enum mapping and the
    typing happen in bulk in :meth:`to_frame` (``zip`` in C, ``replace_strict`` in polars).
    """

    def __init__(self, *, push_data_type: bool = False) -> None:
        self.push_data_type = push_data_type
        self.clear()

    def clear(self) -> None:
        self.rows = 0
        self._rows: list[tuple[Any, ...]] = []
        #: (code, name, count) per added message, in order
        self._runs: list[tuple[str, str, int]] = []
        #: (row index, ticker) of ticks whose ``type`` is 0: absent (N/A) or really UNKNOWN
        self._zero_types: list[tuple[int, Any]] = []
        #: row index -> hpVolume, for ticks that carry one (the SDK reports it as volume)
        self._hp: dict[int, float] = {}

    def add_pb(
        self, market: int, code: str, name: str, ticker_list: Sequence[Any], hp: bool = True
    ) -> None:
        """Append every ``Qot_Common.Ticker`` of one security.

        ``hp=False`` promises that no ticker carries ``hpVolume`` (see ``HP_VOLUME_TAG``).
        """
        n = len(ticker_list)
        if not n:
            return
        base = self.rows
        self.rows += n
        self._runs.append((format_code(market, code), name, n))
        rows = self._rows
        rows.extend(map(_ROW, ticker_list))
        for i in range(base, base + n):
            if rows[i][6] == 0:
                self._zero_types.append((i, ticker_list[i - base]))
        if hp:
            for i, t in enumerate(ticker_list):
                if t.HasField("hpVolume"):
                    self._hp[base + i] = t.hpVolume

    def to_frame(self) -> pl.DataFrame:
        """The buffered rows as a DataFrame (the buffer is left as is)."""
        plr = _polars()
        full_schema = schema(push_data_type=self.push_data_type)
        if not self.rows:
            return cast("pl.DataFrame", plr.DataFrame(schema=full_schema))
        time_c, price_c, vol_c, turn_c, dir_c, seq_c, type_c, pdt_c = zip(*self._rows, strict=True)
        if self._hp:
            volumes = list(vol_c)
            for i, value in self._hp.items():
                volumes[i] = round(value)
            vol_c = tuple(volumes)
        if self._zero_types:
            types = list(type_c)
            for i, t in self._zero_types:
                if not t.HasField("type"):
                    types[i] = -1
            type_c = tuple(types)
        dirs = _DIRECTION_STR
        types = _TYPE_STR
        code_c: list[str] = []
        name_c: list[str] = []
        for code, name, n in self._runs:
            code_c += [code] * n
            name_c += [name] * n
        data: dict[str, Any] = {
            "code": code_c,
            "name": name_c,
            "time": time_c,
            "price": plr.Series(price_c, dtype=plr.Float64),
            "volume": plr.Series(vol_c, dtype=plr.Int64),
            "turnover": plr.Series(turn_c, dtype=plr.Float64),
            "ticker_direction": [dirs[d] if 0 <= d < 4 else _NA for d in dir_c],
            "sequence": plr.Series(seq_c, dtype=plr.Int64),
            "type": [types[t] if 0 <= t < 32 else _NA for t in type_c],
        }
        if self.push_data_type:
            data["push_data_type"] = [_PUSH_STR[p] if 0 <= p < 4 else _NA for p in pdt_c]
        return cast("pl.DataFrame", plr.DataFrame(data, schema=full_schema))
