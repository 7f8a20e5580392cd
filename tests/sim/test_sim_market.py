"""The simulator's tick model, without sockets."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from aiofutu.errors import InvalidCode
from aiofutu.sim import SimConfig, SimMarket, market_states

CODES = ("HK.00700", "US.AAPL", "SH.600519", "SZ.000001", "HK.01234")
SIGN = {1: 32, 6: 68, 7: 85}

# HKEX spread table in 1/1000 HKD: (upper bound of the band, tick).
HK_SPREADS = [(250, 1), (500, 5), (10_000, 10), (20_000, 20), (100_000, 50), (200_000, 100)]
HK_SPREADS += [(500_000, 200), (1_000_000, 500), (2_000_000, 1000), (5_000_000, 2000)]


def _hk_on_grid(price: float) -> bool:
    milli = round(price * 1000)
    low = next(t for upper, t in HK_SPREADS if milli < upper)
    high = next(t for upper, t in HK_SPREADS if milli <= upper)
    return milli % low == 0 or milli % high == 0


def _series(market: SimMarket, code: str) -> list[tuple[float, int, int, int]]:
    return [(t.price, t.volume, t.dir, t.type) for t in market.history(code)]


def test_same_seed_same_prices_and_volumes() -> None:
    a = SimMarket(seed=7, codes=CODES)
    b = SimMarket(seed=7)
    c = SimMarket(seed=8)
    for code in CODES:
        assert _series(a, code) == _series(b, code)
        assert _series(a, code) != _series(c, code)
    new_a = [(t.price, t.volume) for t in a.generate("HK.00700", 500)]
    new_b = [(t.price, t.volume) for t in b.generate("HK.00700", 500)]
    assert new_a == new_b


def test_history_is_prefilled_and_sequences_are_consecutive() -> None:
    market = SimMarket(seed=1, max_ticks=1000)
    history = market.history("HK.00700") + market.generate("HK.00700", 300)
    assert len(market.history("HK.00700")) == 1000
    counters = [t.sequence & 0xFFFFFFFF for t in history]
    assert counters == list(range(counters[0], counters[0] + len(history)))
    for tick in history:
        assert tick.sequence >> 32 == int(tick.timestamp)
        assert tick.timestamp == round(tick.timestamp, 3)
    assert all(a.sequence < b.sequence for a, b in itertools.pairwise(history))
    assert all(a.timestamp <= b.timestamp for a, b in itertools.pairwise(history))


@pytest.mark.parametrize(
    ("code", "zone"),
    [
        ("HK.00700", dt.timezone(dt.timedelta(hours=8))),
        ("SH.600519", dt.timezone(dt.timedelta(hours=8))),
        ("US.AAPL", ZoneInfo("America/New_York")),
    ],
)
def test_time_string_is_exchange_local(code: str, zone: dt.tzinfo) -> None:
    for tick in SimMarket(seed=3).history(code)[-50:]:
        local = dt.datetime.fromtimestamp(tick.timestamp, zone)
        assert (
            tick.time == local.strftime("%Y-%m-%d %H:%M:%S.") + f"{local.microsecond // 1000:03d}"
        )


def test_hk_ticks() -> None:
    market = SimMarket(seed=2)
    ticks = market.history("HK.00700") + market.generate("HK.00700", 5000)
    types = {t.type for t in ticks}
    assert types == {1, 6, 7}
    for tick in ticks:
        assert _hk_on_grid(tick.price), tick.price
        assert tick.typeSign == SIGN[tick.type]
        assert tick.pushDataType == 1
        assert tick.recvTime == 0
        assert not tick.HasField("hpVolume")
        assert tick.turnover == pytest.approx(tick.price * tick.volume)
        if tick.type == 6:
            assert 1 <= tick.volume < 100
        else:
            assert tick.volume % 100 == 0
        if tick.type == 7:
            assert tick.dir == 3
    share = sum(t.type == 1 for t in ticks) / len(ticks)
    assert share > 0.85
    assert {t.dir for t in ticks} == {1, 2, 3}


def test_us_and_a_share_ticks() -> None:
    market = SimMarket(seed=4)
    us = market.history("US.AAPL")
    assert all(1 <= t.volume <= 500 for t in us)
    assert all((t.type == 6) == (t.volume < 100) for t in us if t.type != 7)
    assert all(round(t.price * 100) == pytest.approx(t.price * 100) for t in us)
    assert 100 < us[-1].price < 400
    cn = market.history("SH.600519")
    assert all(t.volume % 100 == 0 for t in cn)
    assert all(t.type in (1, 7) for t in cn)
    assert 700 < cn[-1].price < 3100


def test_names_and_options() -> None:
    market = SimMarket(seed=1, hp_volume=True, max_ticks=10)
    assert market.security("HK.00700").name == "Tencent"
    assert market.security("US.AAPL").name == "Apple Inc."
    assert market.security("SZ.000001").name == "Ping An Bank"
    assert market.security("HK.00001").name == "CK Hutchison"
    with pytest.raises(InvalidCode, match=r"unknown stock HK\.99999: .*securities="):
        market.security("HK.99999")  # OpenD does not know it, nor does the simulator
    assert "HK.99999" not in market
    anything = SimMarket(seed=1, allow_any_code=True)
    assert anything.security("HK.99999").name == "99999 (HK, simulated)"
    ticks = market.history("HK.09988")
    assert len(ticks) == 10
    assert all(t.hpVolume == t.volume for t in ticks)


def test_skip_ticks() -> None:
    market = SimMarket(seed=1)
    last = market.history("HK.00700")[-1].sequence & 0xFFFFFFFF
    market.skip_ticks("HK.00700", 41)
    (tick,) = market.generate("HK.00700")
    assert tick.sequence & 0xFFFFFFFF == last + 42
    with pytest.raises(ValueError, match="n must be"):
        market.skip_ticks("HK.00700", -1)


def test_market_states() -> None:
    hk_morning = dt.datetime(2024, 1, 3, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    states = market_states(hk_morning.timestamp())
    assert states["marketHK"] == 3
    assert states["marketSH"] == 3
    ny = ZoneInfo("America/New_York")
    assert market_states(dt.datetime(2024, 1, 3, 10, 0, tzinfo=ny).timestamp())["marketUS"] == 5
    assert market_states(dt.datetime(2024, 1, 3, 18, 0, tzinfo=ny).timestamp())["marketUS"] == 10
    saturday = dt.datetime(2024, 1, 6, 10, 0, tzinfo=dt.timezone.utc).timestamp()
    assert market_states(saturday)["marketHK"] == 6


def test_config_validation() -> None:
    with pytest.raises(InvalidCode):
        SimConfig(codes=("hk.00700",))
    with pytest.raises(ValueError, match="tick_rate"):
        SimConfig(tick_rate=-1)
    assert SimConfig(codes=["HK.00700"]).codes == ("HK.00700",)  # type: ignore[arg-type]


# ---- the history is made lazily ---------------------------------------------------------------


def _trades(ticks: list[Any]) -> list[tuple[float, int, int, int, int]]:
    """What the seed decides (not the wall clock): price, volume, direction, type, counter."""
    return [(t.price, t.volume, t.dir, t.type, t.sequence & 0xFFFFFFFF) for t in ticks]


def test_creating_a_security_does_not_build_its_history() -> None:
    market = SimMarket(seed=5, codes=("HK.00700",))
    sec = market.security("HK.00700")
    assert sec.history_made == 0
    assert sec.tape_size == 1000  # yet the tape has its 1000 ticks
    latest = sec.latest()
    assert sec.history_made == 1  # the first push of a subscription costs one tick
    assert sec.recent(10)[-1] == latest
    assert sec.history_made == 10
    assert len(market.history("HK.00700")) == 1000
    assert sec.history_made == 1000


def test_lazy_history_is_the_same_whenever_it_is_asked_for() -> None:
    at_once = SimMarket(seed=9)
    eager = _trades(at_once.history("HK.00700"))
    live_a = _trades(at_once.generate("HK.00700", 200))

    later = SimMarket(seed=9)
    live_b = _trades(later.generate("HK.00700", 200))  # live ticks first, history afterwards
    assert live_b == live_a
    assert _trades(later.history("HK.00700")) == eager[200:] + live_a

    pieces = SimMarket(seed=9)
    sec = pieces.security("HK.00700")
    parts = [_trades([sec.latest()]), _trades(sec.recent(7)), _trades(sec.recent(300))]
    assert parts == [eager[-1:], eager[-7:], eager[-300:]]
    assert _trades(sec.recent()) == eager


@pytest.mark.parametrize("code", ["HK.00700", "HK.00003", "US.AAPL", "SH.600519", "US.NIO"])
def test_lazy_history_joins_the_live_tape(code: str) -> None:
    market = SimMarket(seed=11)
    live = market.generate(code, 50)
    tape = market.history(code)
    assert tape[-50:] == live
    counters = [t.sequence & 0xFFFFFFFF for t in tape]
    assert counters == list(range(counters[0], counters[0] + 1000))  # contiguous, no hole
    assert all(a.timestamp <= b.timestamp for a, b in itertools.pairwise(tape))
    assert all(a.sequence < b.sequence for a, b in itertools.pairwise(tape))
    sec = market.security(code)
    start = sec.recent()[950].price  # where the walk began (the newest history tick)
    assert all(start / 2 - 0.01 <= t.price <= 2 * start + 0.01 for t in tape)
    if code.startswith("HK."):
        assert all(_hk_on_grid(t.price) for t in tape)
    # an uptick is priced above the trade before it, a downtick below
    for before, tick in itertools.pairwise(tape):
        if tick.dir == 1 and before.price != tick.price:
            assert tick.price > before.price
        if tick.dir == 2 and before.price != tick.price:
            assert tick.price < before.price


def test_full_live_tape_needs_no_history() -> None:
    market = SimMarket(seed=1, max_ticks=100)
    market.generate("US.AAPL", 150)
    sec = market.security("US.AAPL")
    assert len(market.history("US.AAPL")) == 100
    assert sec.history_made == 0
