"""History K-lines: ``Qot_RequestHistoryKL`` (3103, paged) and its quota ``3104``.

No subscription is needed, but each distinct security costs one unit of the history quota, and
the first page of each security counts against 60 requests per 30 s.

Paging: a reply with ``nextReqKey`` has more bars. The key is opaque bytes, valid only for the
query it came from, so :func:`history_page_from_s2c` wraps it in a :class:`PageKey` that
remembers its :class:`HistoryQuery`; passing it to another query raises :class:`PageKeyMismatch`
before anything is sent (a raw ``bytes`` key is accepted as is, unchecked).

Dates follow the SDK: date-only ``start`` gets 00:00:00 and ``end`` 23:59:59; a missing side is
365 days from the other (both missing: the year up to today). Unlike the SDK, start after end is
an error here. polars form: ``code, name`` then the requested columns in the caller's order;
blank bars skipped; a field missing from a bar is null (the SDK leaks the previous bar's value).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from .._pb import qot_request_history_kl_pb2, qot_request_history_kl_quota_pb2
from ..codes import format_code, parse_code
from ..enums import Session
from ..errors import ConfigurationError
from ..frames import _polars
from ._model import TrustedModel, trusted
from .kline import AuType, KLFields, KLine, KLType, check_kl_type, kline_from_pb

if TYPE_CHECKING:
    from collections.abc import Sequence

    import polars as pl

__all__ = (
    "ALL_FIELDS",
    "MAX_PAGE",
    "HistoryPage",
    "HistoryQuery",
    "HistoryQuota",
    "InvalidHistoryRequest",
    "PageKey",
    "PageKeyMismatch",
    "QuotaItem",
    "history_page_from_s2c",
    "history_quota_from_s2c",
    "history_quota_request",
    "history_request",
    "history_to_polars",
    "make_history_query",
)

#: Bars per reply OpenD sends at most (``maxAckKLNum``).
MAX_PAGE = 1000
_FMT = "%Y-%m-%d %H:%M:%S"
_INTRADAY_MAX = {KLType.K_1M, KLType.K_3M, KLType.K_5M, KLType.K_10M, KLType.K_15M}
_INTRADAY_MAX |= {KLType.K_30M, KLType.K_60M}


class InvalidHistoryRequest(ConfigurationError):
    """A 3103 request that cannot be sent: bad dates, period, adjustment, fields or count."""


class PageKeyMismatch(InvalidHistoryRequest):
    """A page key passed to a query other than the one whose reply carried it."""


#: column name -> KLFields bit (``time_key`` is always sent, bit 0), in the SDK's ALL order.
_FIELD_BITS: dict[str, KLFields] = {
    "time_key": KLFields.NONE,
    "open": KLFields.OPEN,
    "close": KLFields.CLOSE,
    "high": KLFields.HIGH,
    "low": KLFields.LOW,
    "pe_ratio": KLFields.PE,
    "turnover_rate": KLFields.TURNOVER_RATE,
    "volume": KLFields.VOLUME,
    "turnover": KLFields.TURNOVER,
    "change_rate": KLFields.CHANGE_RATE,
    "last_close": KLFields.LAST_CLOSE,
}
#: The columns of the SDK's default (``KL_FIELD.ALL``), in order.
ALL_FIELDS = tuple(_FIELD_BITS)
_ATTR = {
    "open": "open",
    "close": "close",
    "high": "high",
    "low": "low",
    "pe_ratio": "pe",
    "turnover_rate": "turnover_rate",
    "volume": "volume",
    "turnover": "turnover",
    "change_rate": "change_rate",
    "last_close": "last_close",
}


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """One normalised history query: what a page key belongs to."""

    code: str
    kl_type: KLType
    au_type: AuType
    begin: str
    end: str
    fields: tuple[str, ...]
    extended_time: bool
    session: Session

    @property
    def flag(self) -> int:
        """``needKLFieldsFlag``: the OR of the requested fields' bits."""
        out = 0
        for f in self.fields:
            out |= _FIELD_BITS[f]
        return out


@dataclass(frozen=True, slots=True)
class PageKey:
    """An opaque ``nextReqKey`` plus the query it continues."""

    key: bytes
    query: HistoryQuery


def _parse_side(value: object, name: str, end_of_day: bool) -> _dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        return value.replace(tzinfo=None, microsecond=0)
    if isinstance(value, _dt.date):
        t = _dt.time(23, 59, 59) if end_of_day else _dt.time()
        return _dt.datetime.combine(value, t)
    if not isinstance(value, str):
        raise InvalidHistoryRequest(f"{name} must be a str, date or datetime, got {value!r}")
    try:
        if ":" in value:
            return _dt.datetime.strptime(value, _FMT)
        day = _dt.datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise InvalidHistoryRequest(
            f"{name} {value!r} is not 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS'"
        ) from None
    return day.replace(hour=23, minute=59, second=59) if end_of_day else day


def _au(autype: object) -> AuType:
    if autype is None:
        return AuType.NONE  # the SDK maps None to no adjustment here (not in get_cur_kline)
    try:
        return AuType.coerce(autype)
    except ValueError as exc:
        raise InvalidHistoryRequest(str(exc)) from None


def _fields(fields: Sequence[str] | None) -> tuple[str, ...]:
    if fields is None:
        return ALL_FIELDS
    if isinstance(fields, str):
        fields = [fields]
    out: list[str] = []
    for f in fields:
        if f == "ALL":
            out.extend(x for x in ALL_FIELDS if x not in out)
        elif f not in _FIELD_BITS:
            raise InvalidHistoryRequest(f"unknown field {f!r}; use some of {', '.join(ALL_FIELDS)}")
        elif f not in out:
            out.append(f)
    if not out:
        raise InvalidHistoryRequest("fields is empty")
    return tuple(out)


def make_history_query(
    code: str,
    start: object = None,
    end: object = None,
    ktype: object = KLType.K_DAY,
    autype: object = AuType.QFQ,
    fields: Sequence[str] | None = None,
    extended_time: bool = False,
    session: object = Session.NONE,
    today: _dt.date | None = None,
) -> HistoryQuery:
    """The normalised query, with the SDK's date defaults; ``today`` defaults to the local date."""
    market, local = parse_code(code)
    try:
        kt = check_kl_type(ktype)
    except ConfigurationError as exc:
        raise InvalidHistoryRequest(str(exc)) from None
    au = _au(autype)
    try:
        sess = Session.coerce(session)
    except ValueError as exc:
        raise InvalidHistoryRequest(str(exc)) from None
    if sess is Session.OVERNIGHT:
        raise InvalidHistoryRequest("session OVERNIGHT is not accepted for history K-lines")
    if (extended_time or sess is not Session.NONE) and kt not in _INTRADAY_MAX:
        raise InvalidHistoryRequest(
            f"extended_time/session need a period of 60 min or less, not {kt}"
        )
    b = _parse_side(start, "start", end_of_day=False)
    e = _parse_side(end, "end", end_of_day=True)
    year = _dt.timedelta(days=365)
    if b is None and e is None:
        day = today if today is not None else _dt.date.today()
        e = _dt.datetime.combine(day, _dt.time(23, 59, 59))
        b = _dt.datetime.combine(day - year, _dt.time())
    elif b is None:
        assert e is not None
        b = (e - year).replace(hour=0, minute=0, second=0)
    elif e is None:
        e = (b + year).replace(hour=23, minute=59, second=59)
    if b > e:
        raise InvalidHistoryRequest(f"start {b:{_FMT}} is after end {e:{_FMT}}")
    return HistoryQuery(
        code=format_code(market, local),
        kl_type=kt,
        au_type=au,
        begin=b.strftime(_FMT),
        end=e.strftime(_FMT),
        fields=_fields(fields),
        extended_time=bool(extended_time),
        session=sess,
    )


def history_request(
    query: HistoryQuery,
    max_count: int | None = MAX_PAGE,
    page_req_key: PageKey | bytes | None = None,
) -> qot_request_history_kl_pb2.Request:
    """The 3103 request for one page of ``query`` (at most ``min(max_count, 1000)`` bars)."""
    if max_count is not None and (
        isinstance(max_count, bool) or not isinstance(max_count, int) or max_count < 1
    ):
        raise InvalidHistoryRequest(f"max_count must be a positive int or None, got {max_count!r}")
    key: bytes | None
    if page_req_key is None:
        key = None
    elif isinstance(page_req_key, PageKey):
        if page_req_key.query != query:
            raise PageKeyMismatch(
                f"this page key continues {page_req_key.query.code} "
                f"{page_req_key.query.kl_type} {page_req_key.query.begin}..{page_req_key.query.end}"
                f", not {query.code} {query.kl_type} {query.begin}..{query.end}"
            )
        key = page_req_key.key
    elif isinstance(page_req_key, bytes):
        key = page_req_key
    else:
        raise InvalidHistoryRequest(
            f"page_req_key must be bytes or a PageKey, not {page_req_key!r}"
        )
    if key is not None and not key:
        raise InvalidHistoryRequest("page_req_key is empty")
    market, local = parse_code(query.code)
    req = qot_request_history_kl_pb2.Request()
    c2s = req.c2s
    c2s.rehabType = query.au_type.wire
    c2s.klType = query.kl_type.wire
    c2s.security.market = market.wire
    c2s.security.code = local
    c2s.beginTime = query.begin
    c2s.endTime = query.end
    c2s.maxAckKLNum = MAX_PAGE if max_count is None else min(MAX_PAGE, max_count)
    c2s.needKLFieldsFlag = query.flag
    if key is not None:
        c2s.nextReqKey = key
    if query.extended_time:
        c2s.extendedTime = True
    c2s.session = query.session.wire
    c2s.header.securityFirm = 0
    return req


class HistoryPage(TrustedModel):
    """One 3103 reply: its bars and, when more remain, the key of the next page."""

    code: str
    name: str
    bars: tuple[KLine, ...]
    next_key: PageKey | None = None


def history_page_from_s2c(s2c: Any, query: HistoryQuery) -> HistoryPage:
    """The page of a 3103 reply to ``query``; its ``next_key`` remembers ``query``."""
    sec = s2c.security
    key = s2c.nextReqKey if s2c.HasField("nextReqKey") else b""
    return trusted(
        HistoryPage,
        {
            "code": format_code(sec.market, sec.code),
            "name": s2c.name if s2c.HasField("name") else "N/A",
            "bars": tuple(kline_from_pb(k) for k in s2c.klList),
            "next_key": PageKey(key, query) if key else None,
        },
    )


def history_to_polars(
    code: str, name: str, bars: Sequence[KLine], fields: Sequence[str] = ALL_FIELDS
) -> pl.DataFrame:
    """The SDK's frame of history bars: blank bars skipped, missing numbers null."""
    pl_ = _polars()
    cols = _fields(fields)
    kept = [b for b in bars if not b.is_blank]
    n = len(kept)
    data: dict[str, Any] = {"code": [code] * n, "name": [name] * n}
    schema: dict[str, Any] = {"code": pl_.String, "name": pl_.String}
    for c in cols:
        if c == "time_key":
            data[c] = [b.time for b in kept]
            schema[c] = pl_.String
        else:
            attr = _ATTR[c]
            data[c] = [b.__dict__[attr] for b in kept]
            schema[c] = pl_.Float64
    return cast("pl.DataFrame", pl_.DataFrame(data, schema=schema))


# ------------------------------------------------------------------------------ 3104 quota


class QuotaItem(TrustedModel):
    """One security that used history quota, and when."""

    code: str
    name: str
    request_time: str
    request_timestamp: int | None = None


class HistoryQuota(TrustedModel):
    """The history K-line quota: units used and left in the window, with details if asked."""

    used: int
    remain: int
    detail: tuple[QuotaItem, ...] = ()


def history_quota_request(get_detail: bool = False) -> qot_request_history_kl_quota_pb2.Request:
    """The 3104 request (``bGetDetail`` always set, as the SDK does)."""
    req = qot_request_history_kl_quota_pb2.Request()
    req.c2s.bGetDetail = bool(get_detail)
    req.c2s.header.securityFirm = 0
    return req


def history_quota_from_s2c(s2c: Any) -> HistoryQuota:
    """The model of a 3104 reply's S2C."""
    items = tuple(
        trusted(
            QuotaItem,
            {
                "code": format_code(d.security.market, d.security.code),
                "name": d.name if d.HasField("name") else "N/A",
                "request_time": d.requestTime,
                "request_timestamp": d.requestTimeStamp if d.HasField("requestTimeStamp") else None,
            },
        )
        for d in s2c.detailList
    )
    return trusted(
        HistoryQuota, {"used": s2c.usedQuota, "remain": s2c.remainQuota, "detail": items}
    )
