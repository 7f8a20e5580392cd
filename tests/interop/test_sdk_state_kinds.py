"""The official SDK's quote, order-book and broker-queue calls and handlers against aiofutu's
simulator, over real sockets: ``get_stock_quote``, ``get_order_book``, ``get_broker_queue``,
``StockQuoteHandlerBase``, ``OrderBookHandlerBase`` and ``BrokerHandlerBase`` must see the
simulator's values: those derived from its tape, and those a test sets exactly.

The SDK runs in a subprocess (``sdk_state_peer.py``); the simulator runs in a thread of this
process so that the test can read its states and set them between the peer's steps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from aiofutu.testing import BackgroundSimulator, background_simulator

pytest.importorskip("futu", reason="futu-api (the official SDK) is a dev dependency")

CODE = "HK.00700"
US = "US.AAPL"
PEER = Path(__file__).with_name("sdk_state_peer.py")
QUOTE_PRICE = 512.5
BOOK_BIDS = [(498.2, 1200, 3, {70001: 700, 70002: 500}), (498.0, 800, 2)]
BOOK_ASKS = [(498.4, 300, 1)]
BROKER_BIDS = [(4321, "Sim Bid Ltd", 1, 55, 900)]
BROKER_ASKS = [(1234, "Sim Ask Ltd", 1), (1271, "Sim Ask Two", 2)]


def _drive(sim: BackgroundSimulator, home: Path) -> dict[str, Any]:
    server = sim.server
    steps: dict[str, Any] = {}
    config = {
        "port": sim.port,
        "code": CODE,
        "us": US,
        "quote_price": QUOTE_PRICE,
        "book_price": BOOK_BIDS[0][0],
        "broker_id": BROKER_BIDS[0][0],
    }
    env = {**os.environ, "HOME": str(home), "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        [sys.executable, str(PEER), json.dumps(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=home,
    ) as proc:
        watchdog = threading.Timer(60, proc.kill)  # the SDK retries forever on a dead link
        watchdog.start()
        try:
            assert proc.stdout is not None and proc.stdin is not None
            for line in proc.stdout:
                step = json.loads(line)
                steps[step["step"]] = step
                if step["step"] == "first_pushes":
                    steps["sim_first"] = _sim_states(sim)
                elif step["step"] == "ready":
                    sim.call(server.set_quote, CODE, last_price=QUOTE_PRICE, volume=777_000)
                    sim.call(server.set_order_book, CODE, bids=BOOK_BIDS, asks=BOOK_ASKS)
                    sim.call(server.set_broker_queue, CODE, bids=BROKER_BIDS, asks=BROKER_ASKS)
                elif step["step"] == "tick":
                    sim.call(server.burst, CODE, 25)
                    steps["sim_tick"] = _sim_states(sim)
                    last = steps["sim_tick"]["ticks"][-1]["price"]
                    proc.stdin.write(json.dumps({"last_price": last}) + "\n")
                    proc.stdin.flush()
            steps["stderr"] = proc.stderr.read() if proc.stderr else ""
            steps["returncode"] = proc.wait()
        finally:
            watchdog.cancel()
            proc.kill()
    return steps


def _sim_states(sim: BackgroundSimulator) -> dict[str, Any]:
    server = sim.server

    def read() -> dict[str, Any]:
        ticks = server.market.history(CODE)
        return {
            "quote": server.states.quote(CODE),
            "book": server.states.order_book(CODE, 10),
            "broker": server.states.broker_queue(CODE),
            "ticks": [{"price": t.price, "volume": t.volume, "time": t.time} for t in ticks],
        }

    return dict(sim.call(read))


@pytest.fixture(scope="module")
def steps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("home-state")
    with background_simulator(tick_rate=0, keepalive_interval=1) as sim:
        result = _drive(sim, home)
    assert result["returncode"] == 0, result["stderr"][-3000:]
    assert "done" in result, result["stderr"][-3000:]
    return result


def _day_volume(ticks: list[dict[str, Any]]) -> int:
    """The volume of the last tick's local day (the quote's day fold)."""
    date = ticks[-1]["time"][:10]
    return sum(t["volume"] for t in ticks if t["time"][:10] == date)


def _sdk_levels(side: list[Any]) -> list[tuple[float, int, int, dict[int, int]]]:
    return [(p, v, n, {int(k): d for k, d in det.items()}) for p, v, n, det in side]


def _pb_levels(levels: Any) -> list[tuple[float, int, int, dict[int, int]]]:
    return [
        (lv.price, lv.volume, lv.orederCount, {d.orderID: d.volume for d in lv.detailList})
        for lv in levels
    ]


def test_get_calls_refused_before_subscribing(steps: dict[str, Any]) -> None:
    for name in ("unsubscribed_quote", "unsubscribed_book"):
        assert steps[name]["ret"] != 0
        assert "not subscribed" in steps[name]["msg"]
    assert steps["subscribe"]["ret"] == 0


def test_non_hk_broker_and_num_limits(steps: dict[str, Any]) -> None:
    assert steps["subscribe_us_broker"]["ret"] != 0
    assert "HK securities only" in steps["subscribe_us_broker"]["msg"]
    assert steps["us_broker"]["ret"] != 0 and "HK securities only" in steps["us_broker"]["msg"]
    assert steps["subscribe_us_book"]["ret"] == 0
    assert steps["us_book_60"] == {"step": "us_book_60", "ret": 0, "levels": 60}
    assert steps["book_100"] == {"step": "book_100", "ret": 0, "levels": 10}  # clamped
    assert steps["book_0"]["ret"] != 0 and "num must be between 1 and 10" in steps["book_0"]["msg"]


def test_handlers_first_pushes_and_gets_see_the_tape(steps: dict[str, Any]) -> None:
    first = steps["first_pushes"]
    assert first["ok"]
    sim = steps["sim_first"]
    ticks = sim["ticks"]
    q = sim["quote"]
    for row in (first["quote"][0]["rows"][0], steps["first_quote"]["frame"]["rows"][0]):
        assert row["code"] == CODE and row["name"] == "Tencent"
        assert row["last_price"] == ticks[-1]["price"] == q.curPrice
        assert row["volume"] == _day_volume(ticks) == q.volume
        assert row["turnover"] == pytest.approx(q.turnover)
        assert (row["data_date"], row["data_time"]) == tuple(ticks[-1]["time"].split())
        assert row["prev_close_price"] == 480.0
    assert len(steps["first_quote"]["frame"]["columns"]) == 62
    for data in (first["book"][0], steps["first_book"]["book"]):
        assert data["code"] == CODE
        assert _sdk_levels(data["Bid"]) == _pb_levels(sim["book"].orderBookBidList)
        assert _sdk_levels(data["Ask"]) == _pb_levels(sim["book"].orderBookAskList)
        assert ticks[-1]["price"] in (data["Bid"][0][0], data["Ask"][0][0])
        assert data["svr_recv_time_bid"] == ticks[-1]["time"]
    broker = sim["broker"]
    pushed = first["broker"][0]
    assert pushed["code"] == CODE
    for bid in (pushed["bid"], steps["first_broker"]["bid"]):
        assert [
            (r["bid_broker_id"], r["bid_broker_name"], r["bid_broker_pos"]) for r in bid["rows"]
        ] == [(b.id, b.name, b.pos) for b in broker.brokerBidList]
    assert len(steps["first_broker"]["ask"]["rows"]) == len(broker.brokerAskList)


def test_set_states_reach_handlers_and_gets_exactly(steps: dict[str, Any]) -> None:
    pushes = steps["set_pushes"]
    for row in (pushes["quote"]["rows"][0], steps["set_quote"]["frame"]["rows"][0]):
        assert (row["last_price"], row["volume"]) == (QUOTE_PRICE, 777_000)
    expected_bids = [(p, v, n, d[0] if d else {}) for p, v, n, *d in BOOK_BIDS]
    expected_asks = [(p, v, n, {}) for p, v, n in BOOK_ASKS]
    for data in (pushes["book"], steps["set_book"]["book"]):
        assert _sdk_levels(data["Bid"]) == expected_bids
        assert _sdk_levels(data["Ask"]) == expected_asks
    for data in (pushes["broker"], steps["set_broker"]):
        (bid,) = data["bid"]["rows"]
        assert (bid["bid_broker_id"], bid["bid_broker_name"], bid["bid_broker_pos"]) == (
            4321,
            "Sim Bid Ltd",
            1,
        )
        assert (bid["order_id"], bid["order_volume"]) == (55, 900)
        asks = [
            (r["ask_broker_id"], r["ask_broker_pos"], r["order_id"]) for r in data["ask"]["rows"]
        ]
        assert asks == [(1234, 1, "N/A"), (1271, 2, "N/A")]


def test_ticks_move_every_state(steps: dict[str, Any]) -> None:
    pushes = steps["tick_pushes"]
    assert pushes["errors"] == []
    sim = steps["sim_tick"]
    ticks = sim["ticks"]
    # the day fold took the 25 new ticks on top of the tape it started from
    day = _day_volume(steps["sim_first"]["ticks"] + ticks[-25:])
    for row in (pushes["quote"]["rows"][0], steps["tick_quote"]["frame"]["rows"][0]):
        assert row["last_price"] == ticks[-1]["price"] == sim["quote"].curPrice
        assert row["volume"] == sim["quote"].volume == day
    for data in (pushes["book"], steps["tick_book"]["book"]):
        assert _sdk_levels(data["Bid"]) == _pb_levels(sim["book"].orderBookBidList)
    rows = steps["tick_broker"]["bid"]["rows"]
    assert [r["bid_broker_id"] for r in rows] == [b.id for b in sim["broker"].brokerBidList]
