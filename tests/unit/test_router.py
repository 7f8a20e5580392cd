"""The push router, sans-IO: batches of Qot_UpdateTicker frames in, ticks per stream out.

The connection hands the router every push frame of a read chunk at once; these tests do the
same in memory and check ordering, batching, dedupe and what happens to irregular messages.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiofutu import _columns
from aiofutu._codec import Frame
from aiofutu._pb import qot_common_pb2, qot_update_ticker_pb2
from aiofutu.quotes import _ticker_router
from aiofutu.quotes._ticker_router import TickerRouter
from aiofutu.streams import Gap, TickerFrameStream, TickerStream

HK = (1, "00700")
US = (11, "AAPL")


class _NoClient:
    """Stands in for the client: the router never calls back into it."""


def push(sec: tuple[int, str], *seqs: int, ret_msg: str | None = None, **extra: Any) -> Frame:
    resp = qot_update_ticker_pb2.Response(retType=0)
    if ret_msg is not None:
        resp.retMsg = ret_msg  # a legal but unusual layout: no routing key, exact path
    resp.s2c.security.market, resp.s2c.security.code = sec
    resp.s2c.name = "N"
    for seq in seqs:
        resp.s2c.tickerList.add(
            time="t", sequence=seq, dir=1, price=1.0, volume=1, turnover=1.0, **extra
        )
    return Frame(3011, 0, resp.SerializeToString())


def stream(router: TickerRouter, *codes: str) -> TickerStream:
    s = TickerStream(_NoClient(), codes, buffer=1000)  # type: ignore[arg-type]
    router.attach(s)
    return s


def seqs(s: TickerStream) -> list[tuple[str, int]]:
    return [(t.code, t.sequence) for t in s.drain()]


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of messages in each columnar parse the router makes."""
    calls: list[int] = []
    real = _ticker_router._decode

    def counting(body: bytes, messages: int = 1) -> Any:
        calls.append(messages)
        return real(body, messages)

    monkeypatch.setattr(_ticker_router, "_decode", counting)
    return calls


def test_pushes_of_one_code_are_parsed_together(decodes: list[int]) -> None:
    router = TickerRouter()
    hk, us = stream(router, "HK.00700"), stream(router, "US.AAPL")
    router.dispatch_batch([push(HK, 1), push(US, 10), push(HK, 2, 3), push(US, 11), push(HK, 4)])
    router.flush()
    assert seqs(hk) == [("HK.00700", 1), ("HK.00700", 2), ("HK.00700", 3), ("HK.00700", 4)]
    assert seqs(us) == [("US.AAPL", 10), ("US.AAPL", 11)]
    assert sorted(decodes) == [2, 3]  # one parse per security


def test_a_chunk_of_one_security_is_one_parse_and_a_mixed_one_is_not_lost(
    decodes: list[int],
) -> None:
    router = TickerRouter()
    hk, us = stream(router, "HK.00700"), stream(router, "US.AAPL")
    router.dispatch_batch([push(HK, 1), push(HK, 2)])  # general path: one security seen
    router.dispatch_batch([push(HK, 3), push(HK, 4), push(HK, 5)])  # tried as one parse
    assert decodes == [2, 3]
    decodes.clear()
    router.dispatch_batch([push(HK, 6), push(US, 10), push(HK, 7)])  # the try fails: grouped
    assert decodes == [3, 2, 1]
    decodes.clear()
    router.dispatch_batch([push(HK, 8), push(HK, 9)])  # after a mixed chunk: grouped first
    assert decodes == [2]
    router.flush()
    assert [s for _, s in seqs(hk)] == list(range(1, 10))
    assert seqs(us) == [("US.AAPL", 10)]


def test_a_stream_of_several_codes_sees_them_in_arrival_order(decodes: list[int]) -> None:
    router = TickerRouter()
    both = stream(router, "HK.00700", "US.AAPL")
    router.dispatch_batch([push(HK, 1), push(HK, 2), push(US, 10), push(HK, 3), push(US, 11)])
    router.flush()
    assert seqs(both) == [
        ("HK.00700", 1),
        ("HK.00700", 2),
        ("US.AAPL", 10),
        ("HK.00700", 3),
        ("US.AAPL", 11),
    ]
    assert decodes == [2, 1, 1, 1]  # consecutive pushes of one code still share a parse
    router.detach(both)
    one = stream(router, "HK.00700")
    decodes.clear()
    router.dispatch_batch([push(HK, 4), push(US, 12), push(HK, 5)])
    router.flush()
    assert seqs(one) == [("HK.00700", 4), ("HK.00700", 5)]
    assert decodes == [2]  # no multi-code stream left: grouped again


def test_irregular_messages_keep_their_place(decodes: list[int]) -> None:
    """A push without a routing key, or with mixed fields, is decoded exactly, in order."""
    router = TickerRouter()
    hk = stream(router, "HK.00700")
    batch = [
        push(HK, 1),
        push(HK, 2, ret_msg="odd layout"),
        push(HK, 3, type=1),
        push(HK, 4),
        push(HK, 5),
    ]
    router.dispatch_batch(batch)
    router.flush()
    ticks = hk.drain()
    assert [t.sequence for t in ticks] == [1, 2, 3, 4, 5]
    assert [t.type.name for t in ticks] == ["NA", "NA", "AUTO_MATCH", "NA", "NA"]
    assert router.bad_pushes == 0


def test_one_odd_push_costs_a_few_parses_not_one_per_push(decodes: list[int]) -> None:
    router = TickerRouter()
    hk = stream(router, "HK.00700")
    batch = [push(HK, i) for i in range(1, 33)]
    batch[12] = push(HK, 13, type=1)  # the only push that carries ``type``
    router.dispatch_batch(batch)
    router.flush()
    ticks = hk.drain()
    assert [t.sequence for t in ticks] == list(range(1, 33))
    assert [i for i, t in enumerate(ticks) if t.type.name != "NA"] == [12]
    assert len(decodes) <= 2 * 5 + 1  # halving 32 pushes down to the odd one
    assert sum(m for m in decodes if m == 1) <= 2


def test_duplicates_across_messages_of_a_batch_are_dropped() -> None:
    router = TickerRouter()
    hk = stream(router, "HK.00700")
    router.dispatch_batch([push(HK, 1, 2), push(HK, 2, 3), push(HK, 1), push(HK, 4)])
    router.flush()
    assert [s for _, s in seqs(hk)] == [1, 2, 3, 4]
    assert router.duplicates == 2


def test_bad_and_unrouted_pushes_lose_nothing_else(caplog: pytest.LogCaptureFixture) -> None:
    router = TickerRouter()
    hk = stream(router, "HK.00700")
    garbage = Frame(3011, 0, b"\x08\x00\x22\x05\xff\xff\xff\xff\xff")
    failed = Frame(
        3011, 0, qot_update_ticker_pb2.Response(retType=-1, retMsg="no").SerializeToString()
    )
    router.dispatch_batch([push(HK, 1), garbage, push(US, 9), failed, push(HK, 2)])
    router.flush()
    assert [s for _, s in seqs(hk)] == [1, 2]
    assert router.bad_pushes == 2
    assert router.unrouted == 1
    assert "does not parse" in caplog.text
    assert "retType -1" in caplog.text


def test_gaps_in_the_trade_counter_are_found_inside_a_batch() -> None:
    router = TickerRouter()
    hk = stream(router, "HK.00700")
    base = 7 << 32
    router.dispatch_batch([push(HK, base + 1, base + 2), push(HK, base + 5), push(HK, base + 6)])
    router.flush()
    assert [(g.after, g.before, g.missing) for g in hk.gaps] == [(base + 2, base + 5, 2)]
    router.dispatch_batch([push(HK, base + 7), push(HK, base + 9)])
    router.flush()
    assert [g.missing for g in hk.gaps] == [2, 1]


def test_held_pushes_are_released_in_order() -> None:
    router = TickerRouter()
    hk = stream(router, "HK.00700")
    router.dispatch_batch([push(HK, 1)])
    router.flush()
    assert [s for _, s in seqs(hk)] == [1]
    router.hold()
    router.dispatch_batch([push(HK, 3), push(HK, 4)])
    router.flush()
    assert hk.drain() == []  # held while a reconnect backfills
    router.release()
    assert [s for _, s in seqs(hk)] == [3, 4]


def test_frame_streams_get_the_same_columns() -> None:
    pytest.importorskip("polars")
    router = TickerRouter()
    frames = TickerFrameStream(_NoClient(), ("HK.00700",), max_rows=10)  # type: ignore[arg-type]
    router.attach(frames)
    router.dispatch_batch([push(HK, 1, 2), push(HK, 3), push(HK, 3, 4)])
    router.flush()
    df = frames._cut()
    assert df["sequence"].to_list() == [1, 2, 3, 4]
    assert df["code"].to_list() == ["HK.00700"] * 4


def test_security_keys_are_learned_once_and_bounded() -> None:
    router = TickerRouter()
    stream(router, "HK.00700")
    router.dispatch_batch([push(HK, 1), push(HK, 2)])
    assert len(router._keys) == 1
    key = qot_common_pb2.Security(market=1, code="00700").SerializeToString()
    assert router._keys[key] == HK
    for i in range(5000):
        router.dispatch_batch([push((1, f"{i:05d}"), 1)])
    assert len(router._keys) <= 4096


def _cols(sec: tuple[int, str], *seqs: int) -> Any:
    """The columns of a Qot_GetTicker reply (what a reconnect backfills from)."""
    ticks = [
        qot_common_pb2.Ticker(time="t", sequence=q, dir=1, price=1.0, volume=1, turnover=1.0)
        for q in seqs
    ]
    return _columns.from_pb(sec[0], sec[1], "N", ticks)


S = 1_700_000_000 << 32  # a trade second in the high 32 bits


def test_a_counter_that_goes_back_is_a_reset_and_its_ticks_are_kept() -> None:
    """59247 -> 59147 one second later (a restarted gateway): reported, not dropped."""
    router = TickerRouter()
    hk = stream(router, "HK.00700")
    old = S | 59247
    router.dispatch_batch([push(HK, S | 59246, old)])
    router.dispatch_batch([push(HK, (S + (1 << 32)) | 59147, (S + (1 << 32)) | 59148)])
    router.flush()
    assert [q & _LOW for _, q in seqs(hk)] == [59246, 59247, 59147, 59148]
    assert hk.gaps == [Gap("HK.00700", old, (S + (1 << 32)) | 59147, None, reset=True)]
    assert hk.gaps[0].reset and router.duplicates == 0
    # a new trading day: the counter starts again
    day = S + (86_400 << 32)
    router.dispatch_batch([push(HK, day | 1, day | 2)])
    router.flush()
    assert [q & _LOW for _, q in seqs(hk)] == [1, 2]
    assert [(g.before, g.missing, g.reset) for g in hk.gaps[1:]] == [(day | 1, None, True)]


def test_a_re_send_is_a_duplicate_but_a_tick_far_behind_is_a_new_tape() -> None:
    router = TickerRouter()
    hk = stream(router, "HK.00700")
    router.dispatch_batch([push(HK, S | 59246, S | 59247)])
    router.dispatch_batch([push(HK, S | 59247), push(HK, S | 59100)])  # first push, a refill
    router.flush()
    assert [q & _LOW for _, q in seqs(hk)] == [59246, 59247]
    assert router.duplicates == 2 and hk.gaps == []
    # the same second, but the counter far behind: OpenD cannot be re-sending that
    router.dispatch_batch([push(HK, S | 100, S | 101)])
    router.flush()
    assert [q & _LOW for _, q in seqs(hk)] == [100, 101]
    assert [(g.after, g.before, g.reset) for g in hk.gaps] == [(S | 59247, S | 100, True)]
    # and from there on it is the tape: a re-send of the old one is dropped again
    router.dispatch_batch([push(HK, S | 101, S | 102)])
    router.flush()
    assert [q & _LOW for _, q in seqs(hk)] == [102]


def test_a_counter_that_wraps_is_no_reset() -> None:
    router = TickerRouter()
    hk = stream(router, "HK.00700")
    router.dispatch_batch([push(HK, S | (_LOW - 1), S | _LOW), push(HK, S + (1 << 32))])
    router.dispatch_batch([push(HK, S + (1 << 32) | 3)])
    router.flush()
    assert len(seqs(hk)) == 4
    assert [(g.missing, g.reset) for g in hk.gaps] == [(2, False)]


def test_backfill_delivers_what_is_newer_and_drops_re_sent_ticks() -> None:
    router = TickerRouter()
    hk = stream(router, "HK.00700")
    router.dispatch_batch([push(HK, *(S | c for c in range(100, 110)))])
    router.flush()
    hk.drain()
    router.hold()
    router.dispatch_batch([push(HK, S | 113)])  # live, while the backfill is fetched
    router.backfill(_cols(HK, *(S | c for c in range(50, 113))), 1000)
    router.release()
    assert [q & _LOW for _, q in seqs(hk)] == [110, 111, 112, 113]
    assert hk.gaps == [] and router.duplicates == 0


@pytest.mark.parametrize("sec", [HK, US])
def test_backfill_from_another_tape_is_a_reset(sec: tuple[int, str]) -> None:
    """After a reconnect, OpenD's newest tick is older than the last one delivered."""
    code = "HK.00700" if sec == HK else "US.AAPL"
    router = TickerRouter()
    s = stream(router, code)
    last = S | 59247
    router.dispatch_batch([push(sec, S | 59246, last)])
    router.flush()
    s.drain()
    router.hold()
    router.dispatch_batch([push(sec, S | 59149)])  # the new tape goes on meanwhile
    router.backfill(_cols(sec, *(S | c for c in range(59000, 59149))), 1000)
    assert s.gaps == []  # not yet: reported before the next tick delivered
    router.release()
    router.dispatch_batch([push(sec, S | 59150)])
    router.flush()
    assert [q & _LOW for _, q in seqs(s)] == [59149, 59150]  # none of the backfill
    assert s.gaps == [Gap(code, last, S | 59149, None, reset=True)]


_LOW = 0xFFFFFFFF
_WINDOW = _ticker_router._RESEND_WINDOW


def _expected(
    batches: list[list[int]],
) -> tuple[list[int], list[tuple[int, int, int | None, bool]]]:
    """Reference semantics, as the docstring of ``_dedupe_and_watch`` states them.

    A tick not above the last kept one is a re-send, unless its trade counter is more than the
    re-send window behind (a new tape). Between kept ticks the counter step (modulo 2**32) is
    the next trade (1), a gap (2 .. 2**31) or a reset (0, or backwards).
    """
    kept: list[int] = []
    gaps: list[tuple[int, int, int | None, bool]] = []
    for seq in (s for batch in batches for s in batch):
        if kept:
            prev = kept[-1]
            if seq <= prev and (prev - seq) & _LOW <= _WINDOW:
                continue
            step = (seq - prev) & _LOW
            if 1 < step <= 1 << 31:
                gaps.append((prev, seq, step - 1, False))
            elif step != 1:
                gaps.append((prev, seq, None, True))
        kept.append(seq)
    return kept, gaps


_SEQ = st.builds(
    lambda high, low: high << 32 | low,
    st.sampled_from([5, 6]),
    st.one_of(
        st.integers(0, 12),
        st.integers(_LOW - 3, _LOW),
        st.integers(_WINDOW - 2, _WINDOW + 14),
    ),
)


@st.composite
def _tapes(draw: st.DrawFn) -> list[list[list[int]]]:
    """Mostly consecutive trades (the fast path), with skips, re-sends, new seconds, wraps,
    new trading days and restarted gateways (the counter goes back)."""
    high = 5
    low = draw(st.sampled_from([0, 100, _LOW - 6, 60_000]))
    chunks = []
    for _ in range(draw(st.integers(1, 5))):
        chunk = []
        for _ in range(draw(st.integers(1, 4))):
            move = draw(
                st.sampled_from(
                    ["next", "next", "next", "skip", "back", "second", "day", "restart", "far"]
                )
            )
            if move == "skip":
                low += draw(st.integers(1, 5))
            elif move == "back":
                low = max(low - draw(st.integers(1, 5)), 0)
            elif move == "second":
                high += 1
            elif move == "day":  # a new trading day: the counter starts again
                high += draw(st.integers(1, 3))
                low = draw(st.integers(0, 3))
            elif move == "restart":  # a fresh gateway, a little behind, maybe the same second
                high += draw(st.integers(0, 1))
                low = max(low - draw(st.integers(1, 200)), 0)
            elif move == "far":  # a gateway whose clock is behind and counter far lower
                high = max(high - draw(st.integers(0, 1)), 1)
                low = max(low - _WINDOW - draw(st.integers(1, 50)), 0)
            ticks = []
            for _ in range(draw(st.integers(1, 4))):
                low += 1
                if low > _LOW:  # the counter wraps into the next second
                    low, high = 0, high + 1
                ticks.append(high << 32 | low)
            chunk.append(ticks)
        chunks.append(chunk)
    return chunks


_RANDOM = st.lists(st.lists(st.lists(_SEQ, min_size=1, max_size=4), max_size=4), max_size=5)


@given(st.one_of(_tapes(), _RANDOM))
@settings(max_examples=500, deadline=None)
def test_dedupe_and_gaps_match_the_reference(chunks: list[list[list[int]]]) -> None:
    """Any sequence of pushes (dups, gaps, wraps, resets) across read chunks: exact results."""
    router = TickerRouter()
    hk = stream(router, "HK.00700")
    delivered: list[int] = []
    for chunk in chunks:
        router.dispatch_batch([push(HK, *seqs_) for seqs_ in chunk])
        router.flush()
        delivered += [t.sequence for t in hk.drain()]
    kept, gaps = _expected([seqs_ for chunk in chunks for seqs_ in chunk])
    assert delivered == kept
    assert [(g.after, g.before, g.missing, g.reset) for g in hk.gaps] == gaps
    assert router.duplicates == sum(len(p) for c in chunks for p in c) - len(kept)


# -- same-sequence trades (US sequences may carry only the second) ---------------------------


def trades(sec: tuple[int, str], *ticks: tuple[int, int], recv_time: float = 0.0) -> Frame:
    """A push of ticks given as (sequence, volume): the volume tells trades apart."""
    resp = qot_update_ticker_pb2.Response(retType=0)
    resp.s2c.security.market, resp.s2c.security.code = sec
    resp.s2c.name = "N"
    for seq, volume in ticks:
        resp.s2c.tickerList.add(
            time="t", sequence=seq, dir=1, price=1.0, volume=volume, turnover=1.0 * volume
        )
        if recv_time:
            resp.s2c.tickerList[-1].recvTime = recv_time
    return Frame(3011, 0, resp.SerializeToString())


def tape(s: TickerStream) -> list[tuple[int, int]]:
    return [(t.sequence, t.volume) for t in s.drain()]


def test_trades_sharing_a_sequence_are_all_delivered_and_counted() -> None:
    router = TickerRouter()
    us = stream(router, "US.AAPL")
    router.dispatch_batch([trades(US, (S, 100), (S, 200)), trades(US, (S, 300))])
    router.flush()
    assert tape(us) == [(S, 100), (S, 200), (S, 300)]
    assert router.collisions == 2 and router.duplicates == 0
    # re-sends of any of them (OpenD's receive time may differ) are dropped; a new trade of
    # the same second is not
    router.dispatch_batch([trades(US, (S, 100), recv_time=5.0), trades(US, (S, 300), (S, 400))])
    router.flush()
    assert tape(us) == [(S, 400)]
    assert router.collisions == 3 and router.duplicates == 2
    # across three deliveries the first trade of the second is still known
    router.dispatch_batch([trades(US, (S, 200))])
    router.dispatch_batch([trades(US, (S, 100), (S + (1 << 32), 100), (S + (1 << 32), 100))])
    router.flush()
    assert tape(us) == [(S + (1 << 32), 100)]
    assert router.collisions == 3 and router.duplicates == 5
    assert us.gaps == []


def test_a_same_sequence_trade_on_a_counter_market_is_no_reset() -> None:
    router = TickerRouter()
    hk = stream(router, "HK.00700")
    router.dispatch_batch([trades(HK, (S | 1, 100), (S | 2, 100))])
    router.dispatch_batch([trades(HK, (S | 2, 300), (S | 2, 100), (S | 3, 100))])
    router.flush()
    assert tape(hk) == [(S | 1, 100), (S | 2, 100), (S | 2, 300), (S | 3, 100)]
    assert hk.gaps == [] and router.collisions == 1 and router.duplicates == 1


def test_backfill_with_same_sequence_trades_loses_none_and_repeats_none() -> None:
    """A reconnect in the middle of one second's trades: the backfill returns the trades
    delivered before the drop and those made since, all at the same sequence."""
    router = TickerRouter()
    us = stream(router, "US.AAPL")
    router.dispatch_batch([trades(US, (S - (1 << 32), 50), (S, 100), (S, 200))])
    router.flush()
    us.drain()
    router.hold()
    router.dispatch_batch([trades(US, (S, 400), (S + (1 << 32), 10))])  # live, meanwhile
    # (S, 90) is a trade of that second made before the stream began: not news
    backfill = trades(US, (S - (1 << 32), 50), (S, 90), (S, 100), (S, 200), (S, 300), (S, 400))
    router.backfill(_columns.decode(backfill[2]), 1000)  # type: ignore[arg-type]
    router.release()
    assert tape(us) == [(S, 300), (S, 400), (S + (1 << 32), 10)]
    assert router.duplicates == 1  # the live re-send of (S, 400); the backfill's overlap is not
    assert us.gaps == []


def test_backfill_without_the_last_tick_delivered_checks_trade_fields_and_tells_a_gap() -> None:
    """OpenD's window (3 here) no longer holds the last tick delivered, and starts at its
    second: the trades of that second are checked one by one, and ticks may be lost."""
    router = TickerRouter()
    us = stream(router, "US.AAPL")
    router.dispatch_batch([trades(US, (S, 100), (S, 200))])
    router.flush()
    us.drain()
    router.backfill(_columns.decode(trades(US, (S, 100), (S, 300), (S, 400))[2]), 3)  # type: ignore[arg-type]
    assert tape(us) == [(S, 300), (S, 400)]
    assert us.gaps == [Gap("US.AAPL", S, S, None)]


@st.composite
def _us_tapes(draw: st.DrawFn) -> list[list[list[tuple[int, int]]]]:
    """Read chunks of pushes of (sequence, volume): a few seconds, trades and re-sends."""
    return draw(
        st.lists(
            st.lists(
                st.lists(st.tuples(st.integers(0, 3), st.integers(1, 3)), min_size=1, max_size=4),
                min_size=1,
                max_size=3,
            ),
            max_size=5,
        )
    )


@given(_us_tapes())
@settings(max_examples=300, deadline=None)
def test_same_sequence_dedupe_matches_the_reference(
    chunks: list[list[list[tuple[int, int]]]],
) -> None:
    """Reference: a tick below the last sequence is a re-send; one at it is a re-send only if
    a tick with the same fields was delivered at that sequence."""
    router = TickerRouter()
    us = stream(router, "US.AAPL")
    delivered: list[tuple[int, int]] = []
    for chunk in chunks:
        router.dispatch_batch([trades(US, *((S + (q << 32), v) for q, v in p)) for p in chunk])
        router.flush()
        delivered += tape(us)
    kept: list[tuple[int, int]] = []
    collisions = 0
    for q, v in (t for chunk in chunks for p in chunk for t in p):
        tick = (S + (q << 32), v)
        if not kept or tick[0] > kept[-1][0]:
            kept.append(tick)
        elif tick[0] == kept[-1][0] and tick not in kept:
            kept.append(tick)
            collisions += 1
    assert delivered == kept
    assert router.collisions == collisions
    assert router.duplicates == sum(len(p) for c in chunks for p in c) - len(kept)
