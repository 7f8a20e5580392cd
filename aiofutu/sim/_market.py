"""Synthetic tick generation for the simulator.

Every security owns a ``random.Random`` seeded from ``(seed, code)``, so prices, volumes,
directions and trade types are reproducible run to run; only the wall-clock timestamps (and so
``time``/``sequence``) differ. Only securities of the security list exist (``_universe``); each
is created on first use, and its tape starts with ``max_ticks`` ticks of history, made lazily,
so ``get_rt_ticker(code, 1000)`` right after subscribing returns 1000 ticks while subscribing
itself costs next to nothing.

``sequence`` is ``(int(timestamp) << 32) | counter`` with a per-security running trade counter,
the HK layout of the protocol notes (§11). Real US sequences carry 0 in the low 32 bits; the
simulator uses the counter for every market so that sequences are unique and strictly
increasing and gaps can be detected everywhere, unless ``second_sequences`` (the ``us-seconds``
scenario) gives US securities OpenD's US layout: the second only, so that all trades of one
second share a sequence. Those trades then always differ in a trade field (the volume is raised
by one share until it does): a client tells a re-send from another trade by those fields, and
two identical trades of one second would look like a re-send.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import logging
import random
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from google.protobuf.message import DecodeError

from .._pb import qot_common_pb2
from ..codes import parse_code
from ..enums import Market
from ..errors import InvalidCode
from ._hours import UTC8, ZONES, market_states, trading_markets
from ._state import decode_tape, encode_tape
from ._universe import DEFAULT_UNIVERSE, Listing

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

__all__ = ("SecurityState", "SimMarket", "market_states", "trading_markets", "unknown_security")

logger = logging.getLogger("aiofutu.sim")

Ticker = qot_common_pb2.Ticker

_BUY, _SELL, _NEUTRAL = 1, 2, 3
_AUTOMATCH, _ODD_LOT, _AUCTION = 1, 6, 7
#: ``typeSign`` looks like the ASCII trade-type flag (' ', 'D', 'U'); see the protocol notes §6.2.
_SIGN = {_AUTOMATCH: 32, _ODD_LOT: 68, _AUCTION: 85}
_UNIT = 10_000  # prices are kept as integers in 1/10000 of the currency unit
_U32 = 0xFFFFFFFF


# HKEX spread table: (upper bound of the band, tick), both in 1/10000 units.
_HK_SPREADS = (
    (2_500, 10),
    (5_000, 50),
    (100_000, 100),
    (200_000, 200),
    (1_000_000, 500),
    (2_000_000, 1_000),
    (5_000_000, 2_000),
    (10_000_000, 5_000),
    (20_000_000, 10_000),
    (50_000_000, 20_000),
    (99_950_000, 50_000),
)


def _hk_tick(price: int, up: bool) -> int:
    """HKEX tick size at ``price``: the band above it when moving up, below it when moving down."""
    for upper, tick in _HK_SPREADS:
        if price < upper or (not up and price == upper):
            return tick
    return _HK_SPREADS[-1][1]


def _tick(market: Market, price: int, up: bool) -> int:
    if market in (Market.HK, Market.HK_FUTURE):
        return _hk_tick(price, up)
    if market is Market.US and (price < _UNIT or (not up and price == _UNIT)):
        return 1  # $0.0001 below one dollar
    return 100  # 0.01: US, A-shares and everything else


_HK_LOTS = (100, 200, 400, 500, 1000, 2000)
_NOTHING = Listing()


def unknown_security(code: str) -> InvalidCode:
    """The error for a code outside the simulator's security list (its Python API)."""
    return InvalidCode(
        f"unknown stock {code}: not in the simulator's security list (add it with "
        "SimConfig(securities=...), or allow every code with allow_any_code=True)"
    )


class _TimeText:
    """``time`` strings in exchange-local time, the date and clock part cached per second."""

    def __init__(self, tz: _dt.tzinfo) -> None:
        self._tz = tz
        self._second = -1
        self._prefix = ""

    def __call__(self, ts: float) -> tuple[int, str]:
        second, ms = divmod(round(ts * 1000), 1000)
        if second != self._second:
            self._second = second
            local = _dt.datetime.fromtimestamp(second, self._tz)
            self._prefix = local.strftime("%Y-%m-%d %H:%M:%S")
        return second, f"{self._prefix}.{ms:03d}"


class SecurityState:
    """One simulated security: price walk, trade counter and its tape of recent ticks.

    The tape is ``max_ticks`` ticks of history (~2 s apart on average, ending when the security
    was created) followed by every tick made since. The history is generated lazily, newest
    first, by walking back from the creation price with its own random stream: creating or
    subscribing a security costs nothing, asking for its latest tick costs one tick, and the
    ticks are the same whenever they are asked for (same seed, same tape).
    """

    def __init__(
        self,
        code: str,
        *,
        seed: int,
        max_ticks: int,
        hp_volume: bool,
        now: float,
        prefill: bool = True,
        listing: Listing | None = None,
        saved: Mapping[str, Any] | None = None,
        second_sequences: bool = False,
    ) -> None:
        market, short = parse_code(code)
        #: the sequence is the trade's second only (low 32 bits 0), as OpenD's US samples
        self.second_sequences = second_sequences and market is Market.US
        #: with ``second_sequences``: the trades made in second ``_keys_second`` (see _distinct)
        self._keys_second = -1
        self._keys: set[tuple[str, int, int, int, int]] = set()
        self.code = code
        self.market = market
        self.security = qot_common_pb2.Security(market=market.wire, code=short)
        self.max_ticks = max_ticks
        self.paused = False  # a burst owns the security: live flow skips it
        #: Called with every batch of new ticks (made or stored): the state kinds' day fold.
        self.on_ticks: Callable[[Sequence[qot_common_pb2.Ticker]], None] | None = None
        self.hp_volume = hp_volume
        self._seed = f"{seed}:{code}"
        rng = self._rng = random.Random(self._seed)
        known = listing or _NOTHING
        start = known.price if known.price is not None else round(rng.uniform(5.0, 200.0), 2)
        if known.lot is not None:
            self.lot = known.lot
        else:
            self.lot = rng.choice(_HK_LOTS) if market is Market.HK else 100
        self.name = known.name or f"{short} ({market.value}, simulated)"
        self._start = round(start * _UNIT)
        self.price = self._start - self._start % _tick(market, self._start, True)
        self.counter = rng.randint(10_000, 60_000)
        self.made = 0  # ticks generated since creation, for periodic gaps
        self.last_ts = 0.0
        self._tz = ZONES.get(market, UTC8)
        self._text = _TimeText(self._tz)
        self._recent: deque[qot_common_pb2.Ticker] = deque(maxlen=max_ticks)
        #: The lazily made history: its random stream's seed and (end time, price, counter).
        self._history: tuple[str, float, int, int] | None = None
        self._past: list[qot_common_pb2.Ticker] = []  # made so far, newest first
        self._past_iter: Iterator[qot_common_pb2.Ticker] | None = None
        if saved is not None:
            self._restore(saved)
        elif prefill:
            end = round(now, 3)
            self._history = (f"{seed}:{code}:history", end, self.price, self.counter + max_ticks)
            self.counter += max_ticks  # the history's trades come before the first live one
            self.last_ts = end

    # ---- the tape -------------------------------------------------------------------------

    @property
    def history_made(self) -> int:
        """History ticks generated so far (0 until someone asks for ticks before live ones)."""
        return len(self._past)

    def _history_room(self) -> int:
        """History ticks still on the tape (the newest ``max_ticks`` ticks)."""
        return 0 if self._history is None else max(self.max_ticks - len(self._recent), 0)

    def _pull(self, n: int) -> list[qot_common_pb2.Ticker]:
        """The newest ``n`` history ticks, newest first (generated as needed)."""
        past = self._past
        if len(past) < n:
            if self._past_iter is None:
                self._past_iter = self._walk_back()
            past.extend(itertools.islice(self._past_iter, n - len(past)))
        return past[:n]

    def recent(self, n: int | None = None) -> list[qot_common_pb2.Ticker]:
        """The last ``n`` ticks of the tape (all of it: up to ``max_ticks``), oldest first."""
        n = self.max_ticks if n is None else min(n, self.max_ticks)
        live = self._recent
        if n <= len(live):
            return list(itertools.islice(live, len(live) - n, None))
        older = self._pull(min(n - len(live), self._history_room()))
        older.reverse()
        return older + list(live)

    def latest(self) -> qot_common_pb2.Ticker | None:
        """The newest tick of the tape, if any (the first push of a subscription)."""
        if self._recent:
            return self._recent[-1]
        return self._pull(1)[0] if self._history_room() > 0 else None

    @property
    def tape_size(self) -> int:
        """Ticks on the tape, made or still to be made (up to ``max_ticks``)."""
        return len(self._recent) + self._history_room()

    @property
    def prev_close(self) -> float:
        """The previous day's close: the reference price the walk started from."""
        return self._start / _UNIT

    def store(self, ticks: Iterable[qot_common_pb2.Ticker]) -> None:
        """Append ticks made elsewhere (a replay) to the tape."""
        ticks = list(ticks)
        self._recent.extend(ticks)
        if self.on_ticks is not None:
            self.on_ticks(ticks)

    def generate(
        self, n: int, now: float | None = None, *, gap_every: int = 0, gap_size: int = 1
    ) -> list[qot_common_pb2.Ticker]:
        """``n`` new ticks sharing one timestamp (``now`` or the clock), stored on the tape.

        With ``gap_every``, every ``gap_every``-th tick made by this security follows
        ``gap_size`` trades that are never produced: a real hole in the tape.
        """
        ts = round(max(time.time() if now is None else now, self.last_ts), 3)
        self.last_ts = ts
        second, text = self._text(ts)
        ticks = []
        for _ in range(n):
            if gap_every > 0:
                self.made += 1
                if self.made % gap_every == 0:
                    self.counter = (self.counter + gap_size) & _U32
            kind, direction, volume, price = self._draw(self._rng, self.price, forward=True)
            self.price = price
            self.counter = (self.counter + 1) & _U32
            if self.second_sequences:
                volume = self._distinct(second, (text, price, volume, direction, kind))
            ticks.append(self._make(ts, second, text, self.counter, kind, direction, price, volume))
        self._recent.extend(ticks)
        if self.on_ticks is not None:
            self.on_ticks(ticks)
        return ticks

    def skip(self, n: int) -> None:
        """Advance the trade counter without producing ticks: a gap of ``n`` missing trades."""
        if n < 0:
            raise ValueError("n must be >= 0")
        self.counter = (self.counter + n) & _U32

    def _walk_back(self) -> Iterator[qot_common_pb2.Ticker]:
        """The history, newest first: each step undoes one trade's price move."""
        assert self._history is not None
        seed, ts, price, counter = self._history
        rng = random.Random(seed)
        text = _TimeText(self._tz)
        seen: set[tuple[str, int, int, int, int]] = set()
        seen_second = -1
        for _ in range(self.max_ticks):
            kind, direction, volume, before = self._draw(rng, price, forward=False)
            stamp = round(ts, 3)
            second, time_text = text(stamp)
            if self.second_sequences:
                if second != seen_second:
                    seen, seen_second = set(), second
                volume = _unique(seen, (time_text, price, volume, direction, kind))
            yield self._make(stamp, second, time_text, counter, kind, direction, price, volume)
            price = before
            counter = (counter - 1) & _U32
            ts -= round(rng.expovariate(0.5), 3)

    def _distinct(self, second: int, key: tuple[str, int, int, int, int]) -> int:
        """The volume of a new trade in ``second``, raised until no trade of it is the same."""
        if second != self._keys_second:
            self._keys_second = second
            self._keys = self._made_in(second)
        return _unique(self._keys, key)

    def _made_in(self, second: int) -> set[tuple[str, int, int, int, int]]:
        """The trade fields of the tape's ticks of ``second`` (the newest ones only)."""
        keys: set[tuple[str, int, int, int, int]] = set()
        for tick in reversed(self._recent):
            if tick.sequence >> 32 != second:
                return keys
            keys.add(_key(tick))
        for i in range(1, self._history_room() + 1):
            tick = self._pull(i)[i - 1]
            if tick.sequence >> 32 != second:
                break
            keys.add(_key(tick))
        return keys

    # ---- state files ----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """What a state file keeps of this security, to continue it after a restart."""
        # Once live ticks filled the tape, no history is left on it to regenerate.
        history = self._history if self._history_room() > 0 else None
        return {
            "start": self._start,
            "price": self.price,
            "counter": self.counter,
            "made": self.made,
            "last_ts": self.last_ts,
            "history": None if history is None else list(history),
            "tape": encode_tape(self.security, self._recent),
        }

    def _restore(self, saved: Mapping[str, Any]) -> None:
        try:
            self._start = int(saved["start"])
            self.price = int(saved["price"])
            self.counter = int(saved["counter"]) & _U32
            self.made = int(saved["made"])
            self.last_ts = float(saved["last_ts"])
            history = saved.get("history")
            if history is not None:
                seed, end, price, counter = history
                self._history = (str(seed), float(end), int(price), int(counter))
            self._recent.extend(decode_tape(saved["tape"]))
        except (KeyError, TypeError, ValueError, DecodeError) as exc:
            raise ValueError(f"the saved state of {self.code} does not read: {exc!r}") from None
        # A fresh stream, still a function of the seed and of where the tape stopped.
        self._rng = random.Random(f"{self._seed}:{self.counter}")

    # ---- one trade ------------------------------------------------------------------------

    def _draw(self, rng: random.Random, price: int, *, forward: bool) -> tuple[int, int, int, int]:
        """A trade's (kind, direction, volume) and the price on its other side.

        ``forward``: ``price`` is the last traded price and the result the new one. Backwards
        (the history): ``price`` is this trade's and the result the price before it.
        """
        market = self.market
        r = rng.random()
        if r < 0.005:
            kind = _AUCTION
        elif market is Market.HK and r < 0.055 and self.lot > 1:
            kind = _ODD_LOT
        elif market is Market.US and r < 0.2:
            kind = _ODD_LOT
        else:
            kind = _AUCTION if market in (Market.SH, Market.SZ) and r < 0.01 else _AUTOMATCH

        step = 0
        if kind != _AUCTION:
            move = rng.random()
            if move < 0.14:
                step = 1
            elif move < 0.28:
                step = -1
            elif move < 0.29:
                step = 2
            elif move < 0.30:
                step = -2
        other = price
        if step:
            up = step > 0
            high, low = price > 2 * self._start, price < self._start // 2
            if forward:
                leaves = (up and high) or (not up and low)
            else:  # walking back from a rise goes down, from a fall goes up
                leaves = (up and low) or (not up and high)
            if leaves:
                up = not up  # keep the walk within [start/2, 2*start]
            going_up = up if forward else not up
            tick = _tick(market, price, going_up)
            for _ in range(abs(step)):
                other = other + tick if going_up else max(other - tick, tick)
            direction = _BUY if up else _SELL
        else:
            d = rng.random()
            direction = _NEUTRAL if kind == _AUCTION or d < 0.1 else _BUY if d < 0.55 else _SELL

        lot = self.lot
        if kind == _ODD_LOT:
            volume = rng.randint(1, max(lot - 1, 1))
        elif market is Market.US:
            volume = rng.randint(100, 500)
        else:
            volume = lot * (1 + min(int(rng.expovariate(0.3)), 99))
            if kind == _AUCTION:
                volume *= 5
        return kind, direction, volume, other

    def _make(
        self,
        ts: float,
        second: int,
        text: str,
        counter: int,
        kind: int,
        direction: int,
        price: int,
        volume: int,
    ) -> qot_common_pb2.Ticker:
        price_f = price / _UNIT
        tick_pb = Ticker(
            time=text,
            sequence=second << 32 if self.second_sequences else (second << 32) | counter,
            dir=direction,
            price=price_f,
            volume=volume,
            turnover=round(price_f * volume, 4),
            recvTime=0.0,
            type=kind,
            typeSign=_SIGN[kind],
            pushDataType=1,
            timestamp=ts,
        )
        if self.hp_volume:
            tick_pb.hpVolume = float(volume)
        return tick_pb


def _key(tick: qot_common_pb2.Ticker) -> tuple[str, int, int, int, int]:
    return (tick.time, round(tick.price * _UNIT), tick.volume, tick.dir, tick.type)


def _unique(keys: set[tuple[str, int, int, int, int]], key: tuple[str, int, int, int, int]) -> int:
    """``key``'s volume, raised by one share until ``key`` is not in ``keys`` (then added)."""
    text, price, volume, direction, kind = key
    while (text, price, volume, direction, kind) in keys:
        volume += 1
    keys.add((text, price, volume, direction, kind))
    return volume


class SimMarket:
    """All simulated securities, created on first use, plus the set that gets live ticks.

    Only the securities of ``universe`` (default :data:`DEFAULT_UNIVERSE`, plus ``codes``)
    exist, unless ``allow_any_code`` makes one up for any well-formed code.
    """

    def __init__(
        self,
        *,
        seed: int = 1,
        max_ticks: int = 1000,
        hp_volume: bool = False,
        codes: tuple[str, ...] = (),
        prefill: bool = True,
        universe: Mapping[str, Listing] | None = None,
        allow_any_code: bool = False,
        second_sequences: bool = False,
    ) -> None:
        self.seed = seed
        #: US sequences carry only the second (see the module docstring)
        self.second_sequences = second_sequences
        self.max_ticks = max_ticks
        self.hp_volume = hp_volume
        #: New securities start with ``max_ticks`` ticks of history (off for a replay).
        self.prefill = prefill
        #: The securities that exist (code -> :class:`Listing`); :meth:`add` extends it.
        self.universe: dict[str, Listing] = dict(DEFAULT_UNIVERSE if universe is None else universe)
        #: Every well-formed code exists (a made-up security for unknown ones).
        self.allow_any_code = allow_any_code
        #: Snapshots from a state file, by code, used when each security is first touched.
        self.saved: dict[str, dict[str, Any]] = {}
        self._securities: dict[str, SecurityState] = {}
        self._by_wire: dict[tuple[int, str], SecurityState] = {}
        self._live: dict[str, SecurityState] = {}
        for code in codes:
            self.universe.setdefault(code, _NOTHING)
        for code in codes:
            self.activate(code)

    def knows(self, code: str) -> bool:
        """True when ``code`` is a security of this market (OpenD refuses the others)."""
        return self.allow_any_code or code in self.universe

    def add(self, code: str, listing: Listing | None = None) -> None:
        """Make ``code`` a known security (a name, price or lot left out is drawn)."""
        parse_code(code)
        self.universe[code] = listing or self.universe.get(code, _NOTHING)

    def security(self, code: str) -> SecurityState:
        """The state of ``code`` (``"HK.00700"``), created if new.

        Raises :class:`~aiofutu.errors.InvalidCode` for a code outside the security list.
        """
        sec = self._securities.get(code)
        if sec is None:
            if not self.knows(code):
                raise unknown_security(code)
            sec = SecurityState(
                code,
                seed=self.seed,
                max_ticks=self.max_ticks,
                hp_volume=self.hp_volume,
                now=time.time(),
                prefill=self.prefill,
                listing=self.universe.get(code),
                saved=self.saved.pop(code, None),
                second_sequences=self.second_sequences,
            )
            self._securities[code] = sec
            self._by_wire[(sec.security.market, sec.security.code)] = sec
            logger.debug("created security %s (%s)", code, sec.name)
        return sec

    def by_wire(self, market: int, code: str) -> SecurityState | None:
        """The state for a wire ``(market, code)`` pair, if it exists already."""
        return self._by_wire.get((market, code))

    def activate(self, code: str) -> SecurityState:
        """Include ``code`` in the live tick flow."""
        sec = self.security(code)
        self._live[code] = sec
        return sec

    def live(self) -> Iterator[SecurityState]:
        """Securities that get live ticks."""
        return iter(list(self._live.values()))

    def history(self, code: str) -> list[qot_common_pb2.Ticker]:
        """The stored ticks of ``code``, oldest first (up to ``max_ticks``). Do not mutate them."""
        return self.security(code).recent()

    def generate(self, code: str, n: int = 1) -> list[qot_common_pb2.Ticker]:
        """Make ``n`` new ticks for ``code`` and store them; nothing is pushed."""
        return self.security(code).generate(n)

    def skip_ticks(self, code: str, n: int) -> None:
        """Advance the trade counter of ``code`` by ``n`` without producing ticks (a gap)."""
        self.security(code).skip(n)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every security's state for a state file (also those loaded but not used yet)."""
        states = dict(self.saved)
        states.update((code, sec.snapshot()) for code, sec in self._securities.items())
        return states

    def __contains__(self, code: object) -> bool:
        return code in self._securities
