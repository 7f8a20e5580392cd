"""The client's rate limiter, on a fake clock: sliding windows, waits, timeouts, cancellation."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from aiofutu import RateLimited
from aiofutu._pb import qot_request_history_kl_pb2
from aiofutu._ratelimit import (
    OPEND_LIMITS,
    Limit,
    RateLimiter,
    SlidingWindow,
    counts,
    make_limiter,
)
from aiofutu.errors import ConfigurationError, RequestTimeout


class FakeClock:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await anyio.lowlevel.checkpoint()


def _limiter(clock: FakeClock, count: int = 3, window: float = 10.0) -> RateLimiter:
    return RateLimiter({42: Limit(count, window)}, margin=0.0, clock=clock, sleep=clock.sleep)


def test_opend_table() -> None:
    assert OPEND_LIMITS[3103] == Limit(60, 30.0)
    assert OPEND_LIMITS[3203] == Limit(60, 30.0)
    assert OPEND_LIMITS[3223] == Limit(10, 30.0)


def test_sliding_window_is_sliding() -> None:
    w = SlidingWindow(Limit(2, 10.0), margin=0.0)
    assert w.delay(0.0) == 0.0
    w.take(0.0)
    w.take(4.0)
    assert w.delay(5.0) == 5.0  # request 3 must wait until 10 s after request 1
    w.take(10.0)
    assert w.delay(10.0) == 4.0  # now request 2 (at 4 s) is the oldest in the window
    assert w.delay(20.0) == 0.0


def test_margin_lengthens_the_window() -> None:
    w = SlidingWindow(Limit(1, 10.0), margin=0.5)
    w.take(0.0)
    assert w.delay(10.0) == 0.5


async def test_waits_instead_of_failing_and_counts_the_wait() -> None:
    clock = FakeClock()
    lim = _limiter(clock)
    start = clock.now
    for _ in range(3):
        assert await lim.acquire(42) == 0.0
    assert lim.waits == 0
    assert await lim.acquire(42) == 10.0
    assert clock.now - start == 10.0
    assert lim.stats() == {
        "enabled": True,
        "waits": 1,
        "waiting": 0,
        "wait_seconds": 10.0,
        "last_wait_seconds": 10.0,
    }
    await lim.acquire(42)
    await lim.acquire(42)  # requests 2 and 3 were at `start`: free at start + 10 as well
    assert clock.now - start == 10.0
    assert await lim.acquire(42) == 10.0  # request 4 was at start + 10
    assert lim.waits == 2
    assert lim.wait_seconds == 20.0


async def test_unlimited_protocol_never_waits() -> None:
    clock = FakeClock()
    lim = _limiter(clock, count=1)
    for _ in range(100):
        assert await lim.acquire(7) == 0.0
    assert clock.sleeps == []


async def test_timeout_bounds_the_wait() -> None:
    clock = FakeClock()
    lim = _limiter(clock, count=1, window=30.0)
    await lim.acquire(42)
    clock.now += 5
    with pytest.raises(RateLimited) as info:
        await lim.acquire(42, timeout=12.0)
    err = info.value
    assert isinstance(err, RequestTimeout)
    assert err.proto_id == 42
    assert err.retry_after == pytest.approx(25.0)
    assert "1 requests of proto_id=42 per 30s" in str(err)
    assert clock.sleeps == []  # refused without waiting
    assert await lim.acquire(42, timeout=25.0) == 25.0  # exactly enough


async def test_shared_by_concurrent_tasks_in_arrival_order() -> None:
    clock = FakeClock()
    lim = _limiter(clock, count=2, window=10.0)
    start = clock.now
    done: list[tuple[int, float]] = []

    async def one(i: int) -> None:
        await lim.acquire(42)
        done.append((i, clock.now - start))

    async with anyio.create_task_group() as tg:
        for i in range(6):
            tg.start_soon(one, i)
            await anyio.lowlevel.checkpoint()
    assert [i for i, _ in done] == list(range(6))
    assert [t for _, t in done] == [0.0, 0.0, 10.0, 10.0, 20.0, 20.0]
    assert lim.waits >= 2  # (tasks started after the clock moved waited less or not at all)
    assert lim.wait_seconds >= 20.0


async def test_cancelled_waiter_takes_no_slot() -> None:
    lim = RateLimiter({42: Limit(1, 0.3)}, margin=0.0)
    await lim.acquire(42)
    with anyio.move_on_after(0.05) as scope:
        await lim.acquire(42)
    assert scope.cancelled_caught
    assert lim.waiting == 0
    # the cancelled request did not count: the next one waits only for the first one's window
    with anyio.fail_after(2):
        waited = await lim.acquire(42)
    assert 0.1 < waited < 0.4


async def test_a_task_behind_the_lock_times_out_too() -> None:
    lim = RateLimiter({42: Limit(1, 0.5)}, margin=0.0)
    await lim.acquire(42)
    async with anyio.create_task_group() as tg:
        tg.start_soon(lim.acquire, 42)  # sleeps ~0.5 s holding the protocol's lock
        await anyio.sleep(0.01)
        with pytest.raises(RateLimited):
            await lim.acquire(42, timeout=0.1)


def test_history_first_pages_only() -> None:
    req = qot_request_history_kl_pb2.Request()
    req.c2s.beginTime = "2024-01-01 00:00:00"
    assert counts(3103, req)
    assert counts(3103, req.SerializePartialToString())
    req.c2s.nextReqKey = b"k"
    assert not counts(3103, req)
    assert not counts(3103, req.SerializePartialToString())
    assert counts(3223, b"anything")


def test_make_limiter_option() -> None:
    assert make_limiter(True).limits == dict(OPEND_LIMITS)
    off = make_limiter(False)
    assert off.limits == {}
    assert off.stats()["enabled"] is False
    assert make_limiter({3223: (2, 1.5)}).limits == {3223: Limit(2, 1.5)}
    for bad in ("yes", {3223: 5}, {"3223": (1, 1.0)}, {3223: (0, 1.0)}, {3223: (1, -1.0)}):
        with pytest.raises(ConfigurationError):
            make_limiter(bad)
