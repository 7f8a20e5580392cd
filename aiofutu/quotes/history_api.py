"""History K-lines (3103) and their quota (3104): the client's verbs.

:class:`HistoryAPI` is a stateless mixin written against :class:`~aiofutu.quotes._core.Core`,
like :mod:`.ticker`; the sans-IO half (query normalisation, request building, page decoding)
is :mod:`.history`.

* :meth:`~HistoryAPI.request_history_kline` is the SDK's call: it pages internally until it has
  ``max_count`` bars (``None``: all of them) and returns them with the key of the next page.
* :meth:`~HistoryAPI.history_kline` yields the pages of a whole range as they arrive.
* :meth:`~HistoryAPI.request_history_kline_frame` returns the whole range as one polars frame,
  built straight from the protobuf pages (no model per bar): the fast path.

Every page is its own request, with its own ``timeout``. OpenD's rate limit (60 first pages per
30 s) is kept by the client's limiter; a first page refused because the history quota is used
up raises :class:`~aiofutu.errors.HistoryQuotaExhausted`, which says when a unit frees up.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from operator import attrgetter, methodcaller
from typing import TYPE_CHECKING, Any, cast

import anyio

from .._pb import qot_request_history_kl_pb2, qot_request_history_kl_quota_pb2
from .._protocol import decode_response
from ..codes import format_code
from ..enums import ProtoId, Session
from ..errors import HistoryQuotaExhausted, OpenDError
from ..frames import _polars
from ..streams import _import_polars
from ._core import check_timeout
from ._model import trusted
from .history import (
    MAX_PAGE,
    HistoryPage,
    HistoryQuery,
    HistoryQuota,
    InvalidHistoryRequest,
    PageKey,
    history_quota_from_s2c,
    history_quota_request,
    history_request,
    make_history_query,
)
from .kline import AuType, KLine, KLType

if TYPE_CHECKING:
    from collections.abc import Sequence

    import polars as pl

    from ._core import Core

__all__ = ("QUOTA_WINDOW_DAYS", "HistoryAPI", "HistoryPages")

#: Days a history-quota unit stays used (OpenD's docs up to v10.2; a 2026 export says 7):
#: the estimate behind :attr:`HistoryQuotaExhausted.frees_at`.
QUOTA_WINDOW_DAYS = 30
_HIST = int(ProtoId.QOT_REQUEST_HISTORY_KL)
_QUOTA = int(ProtoId.QOT_REQUEST_HISTORY_KL_QUOTA)
_RESPONSE = qot_request_history_kl_pb2.Response
#: frame column -> KLine protobuf field (volume: hpVolume first)
_WIRE = {
    "open": "openPrice",
    "close": "closePrice",
    "high": "highPrice",
    "low": "lowPrice",
    "pe_ratio": "pe",
    "turnover_rate": "turnoverRate",
    "turnover": "turnover",
    "change_rate": "changeRate",
    "last_close": "lastClosePrice",
}


_IS_BLANK = attrgetter("isBlank")
_TIME = attrgetter("time")


def _present(bars: list[Any], wire: str) -> list[Any]:
    """The ``wire`` field of each bar, None where the bar does not have it."""
    values: list[Any] = list(map(attrgetter(wire), bars))
    if 0.0 in values:  # absent somewhere, maybe: ask every bar (one C-level pass)
        has = list(map(methodcaller("HasField", wire), bars))
        if False not in has:
            return values
        if True not in has:
            return [None] * len(values)
        values = [v if h else None for v, h in zip(values, has, strict=True)]
    return values


def _volumes(bars: list[Any]) -> list[Any]:
    """hpVolume where a bar has it, else volume (as a float), else None."""
    hp = _present(bars, "hpVolume")
    if None not in hp:
        return hp
    volume = [float(v) if v is not None else None for v in _present(bars, "volume")]
    return [v if h is None else h for h, v in zip(hp, volume, strict=True)]


#: Periods whose bars never straddle two days, so a range can be split at midnight.
_SPLITTABLE = frozenset(
    {KLType.K_1M, KLType.K_3M, KLType.K_5M, KLType.K_10M, KLType.K_15M, KLType.K_30M}
    | {KLType.K_60M}
)
#: Days a part covers at least (a shorter range is not worth splitting).
_MIN_PART_DAYS = 14
_FMT = "%Y-%m-%d %H:%M:%S"


def _split(query: HistoryQuery, n: int) -> list[HistoryQuery]:
    """``query`` as up to ``n`` consecutive queries split at midnight (intraday periods only)."""
    if n < 2 or query.kl_type not in _SPLITTABLE or query.extended_time:
        return [query]
    begin = _dt.datetime.strptime(query.begin, _FMT)
    end = _dt.datetime.strptime(query.end, _FMT)
    days = (end.date() - begin.date()).days + 1
    n = min(n, days // _MIN_PART_DAYS)
    if n < 2:
        return [query]
    first = begin.date()
    cuts = [
        _dt.datetime.combine(first + _dt.timedelta(days=round(i * days / n)), _dt.time())
        for i in range(1, n)
    ]
    starts = [begin, *cuts]
    ends = [c - _dt.timedelta(seconds=1) for c in cuts] + [end]
    return [
        dataclasses.replace(query, begin=b.strftime(_FMT), end=e.strftime(_FMT))
        for b, e in zip(starts, ends, strict=True)
    ]


#: KLine model field -> protobuf field, in the model's order (``volume`` apart)
_MODEL = (
    ("open", "openPrice"),
    ("close", "closePrice"),
    ("high", "highPrice"),
    ("low", "lowPrice"),
    ("last_close", "lastClosePrice"),
)
_MODEL_TAIL = (
    ("turnover", "turnover"),
    ("turnover_rate", "turnoverRate"),
    ("pe", "pe"),
    ("change_rate", "changeRate"),
    ("timestamp", "timestamp"),
)


def bars_from_pb(kl_list: Any) -> tuple[KLine, ...]:
    """``KLine`` models of a page's ``klList``, read column by column (as ``kline_from_pb``)."""
    bars = list(kl_list)
    cols: dict[str, list[Any]] = {
        "time": list(map(_TIME, bars)),
        "is_blank": list(map(_IS_BLANK, bars)),
    }
    for attr, wire in _MODEL:
        cols[attr] = _present(bars, wire)
    cols["volume"] = _volumes(bars)
    for attr, wire in _MODEL_TAIL:
        cols[attr] = _present(bars, wire)
    names = tuple(cols)
    rows = zip(*cols.values(), strict=True)
    return tuple(trusted(KLine, dict(zip(names, row, strict=True))) for row in rows)


def _page(s2c: Any, query: HistoryQuery) -> HistoryPage:
    """The page of a 3103 reply (``history_page_from_s2c``, with its bars read in bulk)."""
    sec = s2c.security
    key = s2c.nextReqKey if s2c.HasField("nextReqKey") else b""
    return trusted(
        HistoryPage,
        {
            "code": format_code(sec.market, sec.code),
            "name": s2c.name if s2c.HasField("name") else "N/A",
            "bars": bars_from_pb(s2c.klList),
            "next_key": PageKey(key, query) if key else None,
        },
    )


def _check_count(max_count: object) -> int | None:
    if max_count is None:
        return None
    if isinstance(max_count, bool) or not isinstance(max_count, int) or max_count < 1:
        raise InvalidHistoryRequest(f"max_count must be a positive int or None, got {max_count!r}")
    return max_count


class _Columns:
    """The frame's columns, filled page by page straight from protobuf bars."""

    def __init__(self, fields: Sequence[str]) -> None:
        self.fields = tuple(fields)
        self.data: dict[str, list[Any]] = {f: [] for f in self.fields}
        self.code = ""
        self.name = "N/A"

    def add(self, s2c: Any) -> int:
        """Append a page's bars (blank ones skipped); returns how many bars it had.

        Each column is read with one C-level pass (``map(attrgetter)``); presence is checked
        only where a value is 0.0, the default an absent field reads as, so a field OpenD left
        out of a bar is None and a real 0.0 stays 0.0.
        """
        kl = s2c.klList
        bars = list(kl)
        if True in map(_IS_BLANK, bars):
            bars = [k for k in bars if not k.isBlank]
        for f in self.fields:
            col = self.data[f]
            if f == "time_key":
                col.extend(map(_TIME, bars))
            elif f == "volume":
                col.extend(_volumes(bars))
            else:
                col.extend(_present(bars, _WIRE[f]))
        return len(kl)

    def extend(self, other: _Columns) -> None:
        """Append another part's columns (same fields)."""
        for f in self.fields:
            self.data[f].extend(other.data[f])
        if other.name != "N/A":
            self.name = other.name

    def frame(self) -> pl.DataFrame:
        pl_ = _polars()
        n = len(self.data[self.fields[0]]) if self.fields else 0
        data: dict[str, Any] = {"code": [self.code] * n, "name": [self.name] * n}
        schema: dict[str, Any] = {"code": pl_.String, "name": pl_.String}
        for f in self.fields:
            data[f] = self.data[f]
            schema[f] = pl_.String if f == "time_key" else pl_.Float64
        return cast("pl.DataFrame", pl_.DataFrame(data, schema=schema))


class HistoryAPI:
    """``request_history_kline``, ``history_kline``, ``request_history_kline_frame``, quota."""

    async def _history_page(
        self: Core,
        query: HistoryQuery,
        count: int,
        key: PageKey | bytes | None,
        timeout: float | None,
    ) -> Any:
        """One 3103 reply's S2C (a quota refusal of a first page becomes its typed error)."""
        req = history_request(query, count, key)
        try:
            frame = await self._request_frame(_HIST, req, timeout)
            return decode_response(_RESPONSE, frame.body, _HIST, frame.serial).s2c
        except OpenDError as exc:
            if key is None:
                await HistoryAPI._raise_if_quota(self, query.code, exc, timeout)
            raise

    async def _raise_if_quota(
        self: Core, code: str, exc: OpenDError, timeout: float | None
    ) -> None:
        """Ask 3104 whether a refused first page is the quota's doing; raise the typed error."""
        try:
            frame = await self._request_frame(_QUOTA, history_quota_request(True), timeout)
            resp = decode_response(
                qot_request_history_kl_quota_pb2.Response, frame.body, _QUOTA, frame.serial
            )
        except OpenDError:
            return
        quota = history_quota_from_s2c(resp.s2c)
        if quota.remain > 0 or any(d.code == code for d in quota.detail):
            return
        stamps = [d.request_timestamp for d in quota.detail if d.request_timestamp is not None]
        frees_at = (
            _dt.datetime.fromtimestamp(min(stamps), _dt.timezone.utc)
            + _dt.timedelta(days=QUOTA_WINDOW_DAYS)
            if stamps
            else None
        )
        raise HistoryQuotaExhausted(
            exc, code=code, used=quota.used, remain=quota.remain, frees_at=frees_at
        ) from exc

    async def request_history_kline(
        self: Core,
        code: str,
        start: str | _dt.date | None = None,
        end: str | _dt.date | None = None,
        ktype: KLType | str = KLType.K_DAY,
        autype: AuType | str | None = AuType.QFQ,
        fields: Sequence[str] | None = None,
        max_count: int | None = 1000,
        page_req_key: PageKey | bytes | None = None,
        extended_time: bool = False,
        session: Session | str = Session.NONE,
        *,
        timeout: float | None = None,
    ) -> HistoryPage:
        """Up to ``max_count`` history bars (``None``: the whole range), and the next page's key.

        As the SDK's call: ``start``/``end`` are dates (``"2024-01-02"``, a date-only end means
        its 23:59:59) or ``"YYYY-MM-DD HH:MM:SS"``; one missing side is 365 days from the
        other, both missing the year up to today. It pages internally (at most 1000 bars per
        request) until it has ``max_count`` bars or the range is done; pass the returned
        ``next_key`` back as ``page_req_key`` (same query) to go on. Bars keep OpenD's blank
        bars; a field OpenD leaves out is ``None``. ``timeout`` applies to each page.
        """
        self._check_open()
        check_timeout(timeout)
        query = make_history_query(code, start, end, ktype, autype, fields, extended_time, session)
        limit = _check_count(max_count)
        bars: list[KLine] = []
        name = "N/A"
        key: PageKey | bytes | None = page_req_key
        history_request(query, 1, key)  # check the key before anything is sent
        while True:
            want = MAX_PAGE if limit is None else min(MAX_PAGE, limit - len(bars))
            s2c = await HistoryAPI._history_page(self, query, want, key, timeout)
            page = _page(s2c, query)
            name = page.name
            bars.extend(page.bars)
            key = page.next_key
            if key is None or (limit is not None and len(bars) >= limit):
                break
        return trusted(
            HistoryPage, {"code": query.code, "name": name, "bars": tuple(bars), "next_key": key}
        )

    def history_kline(
        self: Core,
        code: str,
        start: str | _dt.date | None = None,
        end: str | _dt.date | None = None,
        ktype: KLType | str = KLType.K_DAY,
        autype: AuType | str | None = AuType.QFQ,
        fields: Sequence[str] | None = None,
        page_size: int = MAX_PAGE,
        extended_time: bool = False,
        session: Session | str = Session.NONE,
        *,
        timeout: float | None = None,
    ) -> HistoryPages:
        """Every page of a history range, oldest first, as it arrives (``async for``).

        Same arguments as :meth:`request_history_kline`; ``page_size`` (1..1000) bars per
        request. Each page's ``next_key`` is set while more pages follow. The arguments are
        checked here, before anything is sent; each page is requested when the loop asks.
        """
        self._check_open()
        check_timeout(timeout)
        query = make_history_query(code, start, end, ktype, autype, fields, extended_time, session)
        size = _check_count(page_size)
        if size is None or size > MAX_PAGE:
            raise InvalidHistoryRequest(f"page_size must be in 1..{MAX_PAGE}, got {page_size!r}")
        return HistoryPages(self, query, size, timeout)

    async def request_history_kline_frame(
        self: Core,
        code: str,
        start: str | _dt.date | None = None,
        end: str | _dt.date | None = None,
        ktype: KLType | str = KLType.K_DAY,
        autype: AuType | str | None = AuType.QFQ,
        fields: Sequence[str] | None = None,
        max_count: int | None = None,
        extended_time: bool = False,
        session: Session | str = Session.NONE,
        *,
        concurrency: int = 4,
        timeout: float | None = None,
    ) -> pl.DataFrame:
        """A whole history range (or its first ``max_count`` bars) as one polars frame.

        The SDK's columns: ``code, name``, then ``fields`` in the caller's order (default all:
        ``time_key, open, close, high, low, pe_ratio, turnover_rate, volume, turnover,
        change_rate, last_close``); blank bars skipped. A field OpenD leaves out of a bar is
        null there (the SDK repeats the previous bar's value). Built straight from the protobuf
        pages, without a model per bar.

        Paging is sequential by nature (each page's key comes with the previous page), so a
        whole range of bars of 60 minutes or less spanning many days is split at day boundaries
        into up to ``concurrency`` parts fetched at once and joined in order (the bars are the
        same; each part's first page counts against OpenD's 60 per 30 s). ``concurrency=1``
        pages through the range in one sequence.
        """
        self._check_open()
        check_timeout(timeout)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise InvalidHistoryRequest(f"concurrency must be an int >= 1, got {concurrency!r}")
        await _import_polars()
        query = make_history_query(code, start, end, ktype, autype, fields, extended_time, session)
        limit = _check_count(max_count)
        parts = _split(query, concurrency) if limit is None else [query]
        results: list[_Columns | None] = [None] * len(parts)
        if len(parts) == 1:
            results[0] = await HistoryAPI._fetch_columns(self, parts[0], limit, timeout)
        else:
            errors: list[BaseException] = []

            async def fetch(i: int, part: HistoryQuery) -> None:
                try:
                    results[i] = await HistoryAPI._fetch_columns(self, part, None, timeout)
                except Exception as exc:  # the first error is raised alone, not in a group
                    errors.append(exc)
                    tg.cancel_scope.cancel()

            async with anyio.create_task_group() as tg:
                for i, part in enumerate(parts):
                    tg.start_soon(fetch, i, part)
            if errors:
                raise errors[0]
        cols = _Columns(query.fields)
        cols.code = query.code
        for part_cols in results:
            assert part_cols is not None
            cols.extend(part_cols)
        return cols.frame()

    async def _fetch_columns(
        self: Core, query: HistoryQuery, limit: int | None, timeout: float | None
    ) -> _Columns:
        cols = _Columns(query.fields)
        got = 0
        key: bytes | None = None
        while True:
            want = MAX_PAGE if limit is None else min(MAX_PAGE, limit - got)
            s2c = await HistoryAPI._history_page(self, query, want, key, timeout)
            got += cols.add(s2c)
            if s2c.HasField("name"):
                cols.name = s2c.name
            key = s2c.nextReqKey if s2c.HasField("nextReqKey") else None
            if not key or (limit is not None and got >= limit):
                return cols

    async def get_history_kl_quota(
        self: Core, detail: bool = False, *, timeout: float | None = None
    ) -> HistoryQuota:
        """The history K-line quota (3104): units used and left, and each security if ``detail``.

        The SDK's ``get_history_kl_quota(get_detail)``; ``request_timestamp`` is kept here.
        """
        self._check_open()
        check_timeout(timeout)
        frame = await self._request_frame(_QUOTA, history_quota_request(bool(detail)), timeout)
        resp = decode_response(
            qot_request_history_kl_quota_pb2.Response, frame.body, _QUOTA, frame.serial
        )
        return history_quota_from_s2c(resp.s2c)


class HistoryPages:
    """The async iterator of :meth:`HistoryAPI.history_kline`: a :class:`HistoryPage` a request."""

    def __init__(self, core: Core, query: HistoryQuery, size: int, timeout: float | None) -> None:
        self.query = query
        self._core = core
        self._size = size
        self._timeout = timeout
        self._key: PageKey | None = None
        self._done = False
        #: pages and bars received so far
        self.pages = 0
        self.bars = 0

    def __aiter__(self) -> HistoryPages:
        return self

    async def __anext__(self) -> HistoryPage:
        if self._done:
            raise StopAsyncIteration
        s2c = await HistoryAPI._history_page(
            self._core, self.query, self._size, self._key, self._timeout
        )
        page = _page(s2c, self.query)
        self._key = page.next_key
        self._done = page.next_key is None
        self.pages += 1
        self.bars += len(page.bars)
        return page
