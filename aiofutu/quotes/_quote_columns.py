"""Basic-quote replies decoded through a columnar view (``protos/basic_qot_columns.proto``).

Reading a ``BasicQot`` field by field costs about 25 attribute reads per quote; the view parses
the whole list into one column per field instead, and the quotes are built straight from the
columns. It is used only when it loses nothing: each column has one value per quote or none
(a field or block sent for some quotes only cannot be placed). Otherwise the reply is decoded
exactly (:func:`~aiofutu.quotes.basic.quotes_from_s2c`): the same models either way.
"""

from __future__ import annotations

from itertools import repeat
from typing import TYPE_CHECKING, Any

from .._pb import basic_qot_columns_pb2, qot_common_pb2
from ..codes import format_code
from ..models import _new, _set_dict
from ._enums import DarkStatus, SecurityStatus, lookup
from .basic import Quote, _future, _option, _pre_after, _warrant

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = ("QuoteView", "quotes_from_view")

#: the view's Response (parse a 3004 reply body with it)
QuoteView = basic_qot_columns_pb2.Response
_DARK = lookup(DarkStatus, DarkStatus.NA)
_SEC_STATUS = lookup(SecurityStatus, SecurityStatus.NA)

#: required fields: (wire name, model name)
_CORE = (
    ("isSuspended", "suspension"),
    ("listTime", "listing_date"),
    ("priceSpread", "price_spread"),
    ("updateTime", "update_time"),
    ("highPrice", "high_price"),
    ("openPrice", "open_price"),
    ("lowPrice", "low_price"),
    ("curPrice", "last_price"),
    ("lastClosePrice", "prev_close_price"),
    ("volume", "volume"),
    ("turnover", "turnover"),
    ("turnoverRate", "turnover_rate"),
    ("amplitude", "amplitude"),
)
#: optional scalars: (wire name, model name, value when absent, conversion)
_OPTIONAL: tuple[tuple[str, str, Any, Callable[[Any], Any] | None], ...] = (
    ("name", "name", "N/A", None),
    ("updateTimestamp", "update_timestamp", None, None),
    ("listTimestamp", "listing_timestamp", None, None),
    ("hpVolume", "hp_volume", None, None),
    ("darkStatus", "dark_status", DarkStatus.NA, _DARK),
    ("secStatus", "sec_status", SecurityStatus.NA, _SEC_STATUS),
)
#: optional blocks, as bytes per quote: (wire name, model name, message, model builder)
_BLOCKS: tuple[tuple[str, str, Any, Callable[[Any], Any]], ...] = (
    ("optionExData", "option", qot_common_pb2.OptionBasicQotExData, _option),
    ("futureExData", "future", qot_common_pb2.FutureBasicQotExData, _future),
    ("warrantExData", "warrant", qot_common_pb2.WarrantBasicQotExData, _warrant),
    ("preMarket", "pre_market", qot_common_pb2.PreAfterMarketData, _pre_after),
    ("afterMarket", "after_market", qot_common_pb2.PreAfterMarketData, _pre_after),
    ("overnight", "overnight", qot_common_pb2.PreAfterMarketData, _pre_after),
)


def quotes_from_view(s2c: Any) -> list[Quote] | None:
    """The quotes of a view S2C, in the server's order; ``None`` when it cannot place a value."""
    cols = s2c.basicQotList
    sec = cols.security
    markets = sec.market[:]
    locals_ = sec.code[:]
    n = len(locals_)
    if len(markets) != n:
        return None
    names: list[str] = ["code"]
    columns: list[Iterable[Any]] = [list(map(format_code, markets, locals_))]
    for wire, name in _CORE:
        values = getattr(cols, wire)[:]
        if len(values) != n:
            return None
        names.append(name)
        columns.append(values)
    for wire, name, absent, convert in _OPTIONAL:
        values = getattr(cols, wire)[:]
        if not values:
            columns.append(repeat(absent, n))
        elif len(values) == n:
            columns.append(values if convert is None else list(map(convert, values)))
        else:
            return None
        names.append(name)
    for wire, name, message, build in _BLOCKS:
        blocks = getattr(cols, wire)[:]
        if not blocks:
            columns.append(repeat(None, n))
        elif len(blocks) == n:
            columns.append([build(message.FromString(b)) for b in blocks])
        else:
            return None
        names.append(name)
    out: list[Quote] = []
    append = out.append
    for row in zip(*columns, strict=True):
        quote = _new(Quote)
        _set_dict(quote, dict(zip(names, row, strict=True)))
        append(quote)
    return out
