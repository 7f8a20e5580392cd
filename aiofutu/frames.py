"""polars DataFrames of ticks, with the official SDK's columns in its order.

polars is an optional extra and is imported here only when a frame is asked for, so
``import aiofutu`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from . import _columns
from .codes import format_code
from .enums import PushDataType, TickerDirection, TickerType
from .errors import MissingDependency

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping, Sequence

    import polars as pl

    from ._columns import TickColumns
    from .models import Ticker

__all__ = ("TICKER_COLUMNS", "column_schema", "to_polars")

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


def _volume(volume: int, hp_volume: float | None) -> int:
    """The SDK's volume: the high-precision one rounded, when there is one that fits Int64."""
    if hp_volume is not None and -(2**63) <= hp_volume < 2**63:  # not inf, not NaN
        rounded = round(hp_volume)
        if -(2**63) <= rounded < 2**63:
            return rounded
    return volume


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
        cols["volume"].append(_volume(t.volume, t.hp_volume))
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


_luts: dict[str, Any] = {}


def column_schema(
    columns: Iterable[str],
    *,
    enums: Mapping[str, type[Any]],
    strings: Collection[str] = (),
    bools: Collection[str] = (),
    ints: Collection[str] = (),
    floats: Collection[str] = (),
    default: str = "Float64",
) -> dict[str, Any]:
    """A polars schema for ``columns``: enum columns as ``pl.Enum`` of their members' values (in
    member order), the named sets as String, Boolean, Int64 or Float64, the rest ``default``.

    One rule for every kind's SDK-shaped frame (quotes, snapshots, static info)."""
    pl = _polars()
    out: dict[str, Any] = {}
    for name in columns:
        if name in enums:
            out[name] = pl.Enum(list(dict.fromkeys(m.value for m in enums[name])))
        elif name in strings:
            out[name] = pl.String
        elif name in bools:
            out[name] = pl.Boolean
        elif name in ints:
            out[name] = pl.Int64
        elif name in floats:
            out[name] = pl.Float64
        else:
            out[name] = getattr(pl, default)
    return out


def _enum_lut(column: str, dtype: Any) -> Any:
    """The enum's strings by wire number, then ``N/A`` last (so wire ``-1`` reads ``N/A``)."""
    lut = _luts.get(column)
    if lut is None:
        strings = {
            "ticker_direction": _DIRECTION_STR,
            "type": _TYPE_STR,
            "push_data_type": _PUSH_STR,
        }[column]
        lut = _luts[column] = _polars().Series(column, [*strings, _NA], dtype=dtype)
    return lut


def _enum_column(column: str, wire: list[int] | None, n: int, dtype: Any) -> Any:
    """Wire numbers to the SDK's strings by a lookup in polars (absent, out of range: N/A)."""
    lut = _enum_lut(column, dtype)
    na = len(lut) - 1
    if wire is None:
        return lut.new_from_index(na, n)
    first = wire[0]
    if wire.count(first) == n:  # one value throughout (usual for type and push_data_type)
        return lut.new_from_index(first if 0 <= first < na else na, n)
    if min(wire) >= -1:  # -1 is the last entry, N/A; a number past the end raises
        try:
            return lut[wire]
        except _polars().exceptions.OutOfBoundsError:
            pass
    return lut[[w if 0 <= w < na else na for w in wire]]


def _constant(column: str, value: str, n: int) -> Any:
    return _polars().Series(column, [value], dtype=_polars().String).new_from_index(0, n)


_CONCAT = ("time", "price", "volume", "turnover", "dir", "sequence", "type", "push_data_type")


class ColumnBuffer:
    """Collects decoded tick columns and turns them into one DataFrame in bulk.

    Nothing is done per tick in Python: columns are concatenated list-to-list, and polars builds
    every Series (enums by a lookup ``gather``). No model is built.
    """

    def __init__(self, *, push_data_type: bool = False) -> None:
        self.push_data_type = push_data_type
        self.clear()

    def clear(self) -> None:
        self.rows = 0
        self._parts: list[tuple[str, TickColumns]] = []

    def add(self, full_code: str, cols: TickColumns) -> None:
        """Append the ticks of one security (``full_code`` like ``HK.00700``)."""
        if cols.n:
            self._parts.append((full_code, cols))
            self.rows += cols.n

    def add_pb(self, market: int, code: str, name: str, ticker_list: Sequence[Any]) -> None:
        """Like :meth:`add`, for exact-schema ``Qot_Common.Ticker`` messages (tests, tools)."""
        self.add(format_code(market, code), _columns.from_pb(market, code, name, ticker_list))

    def to_frame(self) -> pl.DataFrame:
        """The collected ticks as a DataFrame (the buffer is left as is)."""
        plr = _polars()
        full_schema = schema(push_data_type=self.push_data_type)
        n = self.rows
        if not n:
            return cast("pl.DataFrame", plr.DataFrame(schema=full_schema))
        parts = self._parts
        merged: dict[str, Any] = {}
        if len(parts) == 1:
            cols = parts[0][1]
            for name in _CONCAT:
                merged[name] = getattr(cols, name)
            hp_parts = [(0, cols)] if cols.hp_volume is not None else []
        else:
            hp_parts = []
            base = 0
            for _, cols in parts:
                if cols.hp_volume is not None:
                    hp_parts.append((base, cols))
                base += cols.n
            for name in _CONCAT:
                if name in ("type", "push_data_type") and all(
                    getattr(c, name) is None for _, c in parts
                ):
                    merged[name] = None
                    continue
                out: list[Any] = []
                absent = -1 if name == "type" else 0
                for _, cols in parts:
                    col = getattr(cols, name)
                    out += col if col is not None else [absent] * cols.n
                merged[name] = out
        volume = merged["volume"]
        if hp_parts:
            volume = list(volume)
            for base, cols in hp_parts:
                assert cols.hp_volume is not None
                for i, hp in enumerate(cols.hp_volume):
                    if hp is not None:
                        volume[base + i] = _volume(volume[base + i], hp)
        first_code, first = parts[0]
        if all(code == first_code and cols.name == first.name for code, cols in parts):
            code_c: Any = _constant("code", first_code, n)
            name_c: Any = _constant("name", first.name, n)
        else:
            codes: list[str] = []
            names: list[str] = []
            for code, cols in parts:
                codes += [code] * cols.n
                names += [cols.name] * cols.n
            code_c = plr.Series("code", codes, dtype=plr.String)
            name_c = plr.Series("name", names, dtype=plr.String)
        series = [
            code_c,
            name_c,
            plr.Series("time", merged["time"], dtype=plr.String),
            plr.Series("price", merged["price"], dtype=plr.Float64),
            plr.Series("volume", volume, dtype=plr.Int64),
            plr.Series("turnover", merged["turnover"], dtype=plr.Float64),
            _enum_column("ticker_direction", merged["dir"], n, full_schema["ticker_direction"]),
            plr.Series("sequence", merged["sequence"], dtype=plr.Int64),
            _enum_column("type", merged["type"], n, full_schema["type"]),
        ]
        if self.push_data_type:
            series.append(
                _enum_column(
                    "push_data_type", merged["push_data_type"], n, full_schema["push_data_type"]
                )
            )
        return cast("pl.DataFrame", plr.DataFrame(series))


#: ``get_cur_kline``'s columns, in its order (3006; the K-line kind's row in ``_kinds``).
CUR_KLINE_COLUMNS = (
    "code",
    "name",
    "time_key",
    "open",
    "close",
    "high",
    "low",
    "volume",
    "turnover",
    "pe_ratio",
    "turnover_rate",
    "last_close",
)
#: ``get_rt_data``'s columns, in its order (3008; the time-share kind's row in ``_kinds``).
RT_COLUMNS = (
    "code",
    "name",
    "time",
    "is_blank",
    "opened_mins",
    "cur_price",
    "last_close",
    "avg_price",
    "volume",
    "turnover",
)
