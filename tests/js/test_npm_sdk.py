"""The official npm ``futu-api`` SDK (pinned in package-lock.json) runs the seed's JavaScript
example against the simulator's WebSocket gateway, over real sockets.

``seed_ticker.mjs`` does what the seed page's JavaScript tab does (Init, Qot_Sub TICKER with
push, Qot_GetTicker with a count, 3011 pushes) and prints one JSON line per event; the tests
compare those lines with the simulator's own tape: codes, sequences as exact 64-bit integers,
prices, volumes. The SDK is installed with ``npm ci`` into tests/js/node_modules when missing;
the tests skip only when ``node`` or ``npm`` is not on PATH.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from aiofutu.testing import BackgroundSimulator, background_simulator

JS = Path(__file__).resolve().parent
SCRIPT = JS / "seed_ticker.mjs"
DOC = JS.parents[1] / "docs" / "websocket.md"
#: The seed's key (its JavaScript example passes it to ``start``).
SEED_KEY = "7522027ccf5a06b1"
#: Ticks the simulator bursts after the script registers TICKER push (besides the first push).
BURST = 5
COUNT = 3
MARKETS = {"HK": 1, "US": 11}
FIELDS = ("time", "sequence", "dir", "price", "volume", "turnover", "type")


def run_seed(node: str, port: int, *, code: str, key: str | None, **options: Any) -> Any:
    """Run the seed script; returns (exit code, its events by kind, all events)."""
    args = [node, str(SCRIPT), "--port", str(port), "--code", code]
    if key is not None:
        args += ["--key", key]
    for name, value in options.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    proc = subprocess.run(args, cwd=JS, capture_output=True, text=True, timeout=40)
    events = [json.loads(line[5:]) for line in proc.stdout.splitlines() if line.startswith("SEED ")]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_kind.setdefault(event["event"], []).append(event)
    assert proc.stderr == "", proc.stderr
    return proc.returncode, by_kind, events


def tape(sim: BackgroundSimulator, code: str) -> list[dict[str, Any]]:
    """Every tick the simulator holds for ``code``, oldest first, as plain values."""

    def read() -> list[dict[str, Any]]:
        ring = sim.server.market.security(code).recent()
        return [{f: getattr(t, f) for f in FIELDS} for t in ring]

    result: list[dict[str, Any]] = sim.call(read)
    return result


def as_tape(tick: dict[str, Any]) -> dict[str, Any]:
    """A tick as Node printed it, with the types of the tape (int64 from exact strings)."""
    assert isinstance(tick["sequence"], str) and isinstance(tick["volume"], str)
    return {
        "time": tick["time"],
        "sequence": int(tick["sequence"]),
        "dir": tick["dir"],
        "price": tick["price"],
        "volume": int(tick["volume"]),
        "turnover": tick["turnover"],
        "type": tick["type"],
    }


@pytest.mark.parametrize("key", [None, SEED_KEY], ids=["no-key", "key"])
@pytest.mark.parametrize("code", ["HK.00700", "US.AAPL"])
def test_seed_example_matches_the_tape(node: str, code: str, key: str | None) -> None:
    with background_simulator(tick_rate=0, burst=BURST, websocket_port=0, websocket_key=key) as sim:
        assert sim.websocket_port
        rc, seen, events = run_seed(
            node, sim.websocket_port, code=code, key=key, count=COUNT, pushes=1 + BURST
        )
        assert rc == 0, events
        ticks = tape(sim, code)
        handshakes = sim.call(lambda: dict(sim.server.handshakes))
        requests = sim.call(lambda: dict(sim.server.requests))
    assert handshakes == {"websocket": 1}
    assert requests == {3001: 1, 3010: 1}

    (login,) = seen["login"]
    assert login["ok"] is True and int(login["connID"]) > 2**53
    assert seen["sub"] == [{"event": "sub", "retType": 0, "retMsg": ""}]

    market, symbol = code.split(".")
    security = {"market": MARKETS[market], "code": symbol}
    (ticker,) = seen["ticker"]
    assert (ticker["retType"], ticker["ok"], ticker["errCode"]) == (0, True, 0)
    assert ticker["s2c"]["security"] == security
    got = [as_tape(t) for t in ticker["s2c"]["tickerList"]]
    assert len(got) == COUNT
    sequences = [t["sequence"] for t in ticks]
    start = sequences.index(got[0]["sequence"])
    assert got == ticks[start : start + COUNT]  # consecutive ticks of the tape, field for field
    assert all(s > 2**53 for s in sequences)  # exact only as 64-bit integers

    # The first push (the latest tick at subscription), then the burst: the tape's last ticks.
    pushes = seen["push"]
    assert [p["cmd"] for p in pushes] == [3011] * (1 + BURST)
    assert all(p["retType"] == 0 and p["s2c"]["security"] == security for p in pushes)
    pushed = [as_tape(t) for p in pushes for t in p["s2c"]["tickerList"]]
    assert pushed == ticks[-(1 + BURST) :]
    assert seen["done"] == [{"event": "done", "exit": 0}]


@pytest.mark.parametrize("key", ["not-the-key", None], ids=["wrong-key", "no-key"])
def test_wrong_key_is_refused(node: str, key: str | None) -> None:
    with background_simulator(tick_rate=0, websocket_port=0, websocket_key=SEED_KEY) as sim:
        assert sim.websocket_port
        rc, seen, events = run_seed(
            node, sim.websocket_port, code="HK.00700", key=key, login_timeout=1.5
        )
        handshakes = sim.call(lambda: dict(sim.server.handshakes))
        requests = sim.call(lambda: dict(sim.server.requests))
    # As from OpenD: no answer to the Init, so the SDK never logs in.
    assert rc == 2, events
    assert "login" not in seen and seen["login_timeout"] == [
        {"event": "login_timeout", "seconds": 1.5}
    ]
    assert handshakes == {"websocket-refused": 1}
    assert requests == {}


def test_docs_example_runs(node: str) -> None:
    """docs/websocket.md's JavaScript block, as printed there, against the simulator."""
    (block,) = re.findall(r"```javascript\n(.*?)```", DOC.read_text(), re.S)
    assert '"127.0.0.1", 33333, false, "7522027ccf5a06b1"' in block
    script = JS / "_docs_example.mjs"  # beside node_modules, so the imports resolve
    with background_simulator(
        tick_rate=0, burst=2, websocket_port=0, websocket_key=SEED_KEY
    ) as sim:
        script.write_text(block.replace("33333", str(sim.websocket_port)))
        try:
            proc = subprocess.run(
                [node, str(script)], cwd=JS, capture_output=True, text=True, timeout=30
            )
        finally:
            script.unlink()
        ticks = tape(sim, "HK.00700")
    assert proc.returncode == 0 and proc.stderr == "", proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "stop"
    start = lines.index("Ticker: errCode 0, retMsg , retType 0")
    end = lines.index("}", start)
    reply = json.loads("\n".join(lines[start + 1 : end + 1]))
    got = [as_tape(t) for t in reply["tickerList"]]
    assert len(got) == 3 and all(t in ticks for t in got)
    pushes = [json.loads(line.split(": ", 1)[1]) for line in lines if line.startswith("push 3011")]
    assert [as_tape(p["tickerList"][0]) for p in pushes] == ticks[-3:]  # first push + burst


def test_state_kinds_over_the_websocket_gateway(node: str) -> None:
    """``state_kinds.mjs``: the npm SDK's GetBasicQot, GetOrderBook and GetBroker, and the first
    pushes 3005/3013/3015, see the simulator's states."""
    with background_simulator(tick_rate=0, websocket_port=0) as sim:
        assert sim.websocket_port
        args = [node, str(JS / "state_kinds.mjs"), "--port", str(sim.websocket_port)]
        proc = subprocess.run(args, cwd=JS, capture_output=True, text=True, timeout=40)
        states = sim.server.states
        quote = sim.call(states.quote, "HK.00700")
        book = sim.call(states.order_book, "HK.00700", 10)
        queue = sim.call(states.broker_queue, "HK.00700")
    events: dict[str, list[dict[str, Any]]] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("STATE "):
            event = json.loads(line[6:])
            events.setdefault(event["event"], []).append(event)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert events["sub"][0]["retType"] == 0
    pushes = {e["cmd"]: e["s2c"] for e in events["push"]}
    assert set(pushes) == {3005, 3013, 3015}
    for q in (pushes[3005]["basicQotList"][0], events["quote"][0]["s2c"]["basicQotList"][0]):
        assert (q["curPrice"], int(q["volume"]), q["updateTime"]) == (
            quote.curPrice,
            quote.volume,
            quote.updateTime,
        )
    for s2c in (pushes[3013], events["book"][0]["s2c"]):
        bids = [
            (lv["price"], int(lv["volume"]), lv["orederCount"]) for lv in s2c["orderBookBidList"]
        ]
        assert bids == [(lv.price, lv.volume, lv.orederCount) for lv in book.orderBookBidList]
    for s2c in (pushes[3015], events["broker"][0]["s2c"]):
        ids = [int(b["id"]) for b in s2c["brokerAskList"]]
        assert ids == [b.id for b in queue.brokerAskList]
