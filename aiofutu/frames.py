"""polars DataFrames of ticks, with the official SDK's columns in its order.

polars is an optional extra and is imported here only when a frame is asked for, so
``import aiofutu`` stays light.
"""

from __future__ import annotations

from itertools import chain, repeat
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


_DIRECTION_GET = dict(enumerate(_DIRECTION_STR)).get
_TYPE_GET = dict(enumerate(_TYPE_STR)).get
_PUSH_GET = dict(enumerate(_PUSH_STR)).get


class ColumnBuffer:
    """Collects pushed or fetched ticker lists and turns them into one DataFrame in bulk.

    Nothing is done per tick until :meth:`to_frame`, and there the per-tick work runs in C:
    ``attrgetter`` over the chained protobuf lists, ``zip`` to transpose, ``dict.get`` to map
    enum numbers to the SDK's strings. No model is built.
    """

    def __init__(self, *, push_data_type: bool = False) -> None:
        self.push_data_type = push_data_type
        self.clear()

    def clear(self) -> None:
        self.rows = 0
        self._lists: list[Any] = []
        #: (code, name, count) per added list, in order
        self._runs: list[tuple[str, str, int]] = []
        #: (first row, list) of the lists that may carry ``hpVolume``
        self._hp_lists: list[tuple[int, Any]] = []

    def add(self, full_code: str, name: str, ticker_list: Sequence[Any], hp: bool = True) -> None:
        """Append the ``Qot_Common.Ticker`` list of one security (``full_code`` like HK.00700).

        ``hp=False`` promises that no ticker carries ``hpVolume`` (see ``HP_VOLUME_TAG``).
        """
        n = len(ticker_list)
        if not n:
            return
        if hp:
            self._hp_lists.append((self.rows, ticker_list))
        self.rows += n
        self._runs.append((full_code, name, n))
        self._lists.append(ticker_list)

    def add_pb(
        self, market: int, code: str, name: str, ticker_list: Sequence[Any], hp: bool = True
    ) -> None:
        """Like :meth:`add`, for a security given as the wire's (market, code)."""
        self.add(format_code(market, code), name, ticker_list, hp)

    def to_frame(self) -> pl.DataFrame:
        """The collected ticks as a DataFrame (the buffer is left as is)."""
        plr = _polars()
        full_schema = schema(push_data_type=self.push_data_type)
        n = self.rows
        if not n:
            return cast("pl.DataFrame", plr.DataFrame(schema=full_schema))
        rows = list(map(_ROW, chain.from_iterable(self._lists)))
        time_c, price_c, vol_c, turn_c, dir_c, seq_c, type_c, pdt_c = zip(*rows, strict=True)
        if self._hp_lists:
            volumes: list[int] | None = None
            for base, tickers in self._hp_lists:
                for i, t in enumerate(tickers):
                    if t.HasField("hpVolume"):
                        if volumes is None:
                            volumes = list(vol_c)
                        volumes[base + i] = round(t.hpVolume)
            if volumes is not None:
                vol_c = tuple(volumes)
        if 0 in type_c:  # 0 is UNKNOWN when OpenD sent it, N/A when the field is absent
            flat = list(chain.from_iterable(self._lists))
            fixed = list(type_c)
            for i, value in enumerate(type_c):
                if value == 0 and not flat[i].HasField("type"):
                    fixed[i] = -1
            type_c = tuple(fixed)
        na = repeat(_NA, n)
        code_c: list[str] = []
        name_c: list[str] = []
        for code, name, count in self._runs:
            code_c += [code] * count
            name_c += [name] * count
        data: dict[str, Any] = {
            "code": code_c,
            "name": name_c,
            "time": time_c,
            "price": plr.Series(price_c, dtype=plr.Float64),
            "volume": plr.Series(vol_c, dtype=plr.Int64),
            "turnover": plr.Series(turn_c, dtype=plr.Float64),
            "ticker_direction": list(map(_DIRECTION_GET, dir_c, na)),
            "sequence": plr.Series(seq_c, dtype=plr.Int64),
            "type": list(map(_TYPE_GET, type_c, repeat(_NA, n))),
        }
        if self.push_data_type:
            data["push_data_type"] = list(map(_PUSH_GET, pdt_c, repeat(_NA, n)))
        return cast("pl.DataFrame", plr.DataFrame(data, schema=full_schema))
