"""Trading sessions of the simulated markets: GetGlobalState's market states, and when live
ticks flow under ``market_hours="real"``."""

from __future__ import annotations

import datetime as _dt

from ..enums import Market

__all__ = ("NEW_YORK", "UTC8", "ZONES", "market_states", "trading_markets")


def _zone(name: str, fallback_hours: int) -> _dt.tzinfo:
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    except Exception:  # no tzdata on this machine: a fixed offset is close enough for a simulator
        return _dt.timezone(_dt.timedelta(hours=fallback_hours))


UTC8 = _dt.timezone(_dt.timedelta(hours=8))
NEW_YORK = _zone("America/New_York", -5)
ZONES: dict[Market, _dt.tzinfo] = {
    Market.US: NEW_YORK,
    Market.JP: _dt.timezone(_dt.timedelta(hours=9)),
    Market.AU: _zone("Australia/Sydney", 10),
    Market.CA: _zone("America/Toronto", -5),
}


# ---- market states for GetGlobalState -------------------------------------------------------

_CLOSED, _AUCTION_STATE, _WAITING, _MORNING, _REST, _AFTERNOON = 6, 1, 2, 3, 4, 5
_PRE_MARKET, _AFTER_HOURS, _NIGHT_OPEN, _FUTURE_DAY_OPEN = 8, 10, 13, 15


def _state(now: float, tz: _dt.tzinfo, table: tuple[tuple[int, int], ...], default: int) -> int:
    local = _dt.datetime.fromtimestamp(now, tz)
    if local.weekday() >= 5:
        return _CLOSED
    minute = local.hour * 60 + local.minute
    for end, state in table:
        if minute < end:
            return state
    return default


def _hhmm(h: int, m: int = 0) -> int:
    return h * 60 + m


_HK_TABLE = (
    (_hhmm(9), _CLOSED),
    (_hhmm(9, 20), _AUCTION_STATE),
    (_hhmm(9, 30), _WAITING),
    (_hhmm(12), _MORNING),
    (_hhmm(13), _REST),
    (_hhmm(16), _AFTERNOON),
)
_CN_TABLE = (
    (_hhmm(9, 15), _CLOSED),
    (_hhmm(9, 25), _AUCTION_STATE),
    (_hhmm(9, 30), _WAITING),
    (_hhmm(11, 30), _MORNING),
    (_hhmm(13), _REST),
    (_hhmm(15), _AFTERNOON),
)
_US_TABLE = (
    (_hhmm(4), _CLOSED),
    (_hhmm(9, 30), _PRE_MARKET),
    (_hhmm(16), _AFTERNOON),
    (_hhmm(20), _AFTER_HOURS),
)
_HKF_TABLE = (
    (_hhmm(3), _NIGHT_OPEN),
    (_hhmm(9, 15), _CLOSED),
    (_hhmm(16, 30), _FUTURE_DAY_OPEN),
    (_hhmm(17, 15), _CLOSED),
)


#: States in which a market makes trades (Morning, Afternoon, NightOpen, FutureDayOpen).
_TRADING = frozenset({_MORNING, _AFTERNOON, _NIGHT_OPEN, _FUTURE_DAY_OPEN})
_FORCED_OPEN = {
    "marketHK": _AFTERNOON,
    "marketUS": _AFTERNOON,
    "marketSH": _AFTERNOON,
    "marketSZ": _AFTERNOON,
    "marketHKFuture": _FUTURE_DAY_OPEN,
    "marketUSFuture": _AFTERNOON,
}
_STATE_FIELD = {
    Market.HK: "marketHK",
    Market.US: "marketUS",
    Market.SH: "marketSH",
    Market.SZ: "marketSZ",
    Market.HK_FUTURE: "marketHKFuture",
}


def market_states(now: float, hours: str = "real") -> dict[str, int]:
    """``QotMarketState`` values for GetGlobalState.

    ``hours="real"``: by trading calendar (weekends closed, no holidays); ``"open"``: every
    market in a trading session; ``"closed"``: every market closed.
    """
    if hours == "open":
        return dict(_FORCED_OPEN)
    if hours == "closed":
        return dict.fromkeys(_FORCED_OPEN, _CLOSED)
    return {
        "marketHK": _state(now, UTC8, _HK_TABLE, _CLOSED),
        "marketUS": _state(now, NEW_YORK, _US_TABLE, _CLOSED),
        "marketSH": _state(now, UTC8, _CN_TABLE, _CLOSED),
        "marketSZ": _state(now, UTC8, _CN_TABLE, _CLOSED),
        "marketHKFuture": _state(now, UTC8, _HKF_TABLE, _NIGHT_OPEN),
        "marketUSFuture": _state(now, NEW_YORK, _US_TABLE, _CLOSED),
    }


def trading_markets(now: float, hours: str) -> frozenset[Market] | None:
    """Markets that make trades at ``now``; ``None`` means all of them.

    Markets without a calendar here (SG, JP, ...) trade unless ``hours`` is ``"closed"``.
    """
    if hours == "open":
        return None
    if hours == "closed":
        return frozenset()
    states = market_states(now)
    return frozenset(m for m in Market if states.get(_STATE_FIELD.get(m, ""), _MORNING) in _TRADING)
