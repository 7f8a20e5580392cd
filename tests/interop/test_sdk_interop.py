"""The official SDK's OpenQuoteContext against aiofutu's simulator, over real sockets.

Any difference the SDK reveals is a bug in our frames. The SDK runs in subprocesses (see
``sdk_peer.py``), one per variant and in parallel: plain text with and without ``hpVolume``, and
encrypted with one RSA key on both sides (``SysConfig.enable_proto_encrypt(True)``,
``SysConfig.set_init_rsa_file(path)``; the SDK asks for AES-CBC, and the simulator answers
with CBC or, forced, with OpenD's ECB variant), plus the SDK with a key file but encryption off.
The simulators run in threads of this process so that the test can read the ticks they hold and
set off bursts between steps.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from aiofutu import TICKER_COLUMNS, TickerType
from aiofutu._pb import qot_common_pb2
from aiofutu.testing import BackgroundSimulator, background_simulator

pytest.importorskip("futu", reason="futu-api (the official SDK) is a dev dependency")
pytest.importorskip("cryptography", reason="the crypto extra (a dev dependency)")

CODE = "HK.00700"
OTHER = "US.AAPL"
PEER = Path(__file__).with_name("sdk_peer.py")
DIRECTION = {0: "N/A", 1: "BUY", 2: "SELL", 3: "NEUTRAL"}


@dataclass
class Run:
    """What one SDK peer reported, and what its simulator held meanwhile."""

    hp_volume: bool
    burst: int  # within the 1000-tick ring
    per_push: int
    #: simulator options beyond the common ones (rsa_key, aes_mode)
    sim: dict[str, Any] = field(default_factory=dict)
    #: peer options beyond the common ones (rsa_file, encrypt)
    peer: dict[str, Any] = field(default_factory=dict)
    #: what ``server.handshakes`` must count for the one connection
    handshake: str = "plain"
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    before: list[qot_common_pb2.Ticker] = field(default_factory=list)  # ring at "ready"
    after: list[qot_common_pb2.Ticker] = field(default_factory=list)  # ring after the burst
    requests: dict[int, int] = field(default_factory=dict)
    handshakes: dict[str, int] = field(default_factory=dict)
    returncode: int | None = None
    stderr: str = ""


def _drive(sim: BackgroundSimulator, run: Run, home: Path) -> Run:
    server = sim.server
    config = {"port": sim.port, "code": CODE, "other": OTHER}
    config |= {"burst": run.burst, "per_push": run.per_push, **run.peer}
    env = {**os.environ, "HOME": str(home), "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        [sys.executable, str(PEER), json.dumps(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=home,
    ) as proc:
        watchdog = threading.Timer(50, proc.kill)  # the SDK retries forever on a dead link
        watchdog.start()
        try:
            assert proc.stdout is not None
            assert proc.stderr is not None
            for line in proc.stdout:
                step = json.loads(line)
                run.steps[step["step"]] = step
                if step["step"] == "ready":
                    run.before = sim.call(server.market.history, CODE)
                    sim.call(server.burst, CODE, run.burst, ticks_per_push=run.per_push)
                    run.after = sim.call(server.market.history, CODE)
            run.stderr = proc.stderr.read()
            run.returncode = proc.wait()
        finally:
            watchdog.cancel()
            proc.kill()
    run.requests = dict(sim.call(lambda: dict(server.requests)))
    run.handshakes = dict(sim.call(lambda: dict(server.handshakes)))
    return run


def _variants(key: str) -> dict[str, Run]:
    encrypted = {"rsa_file": key}
    return {
        "volume": Run(False, 500, 1),  # one tick per push
        "hpVolume": Run(True, 800, 20),  # 20 ticks per push
        "aes-cbc": Run(False, 500, 1, {"rsa_key": key}, encrypted, "aes-cbc"),
        "aes-ecb": Run(True, 600, 10, {"rsa_key": key, "aes_mode": "ecb"}, encrypted, "aes-ecb"),
        # a key file but encryption off: RSA InitConnect with packetEncAlgo=-1, then plain text
        "rsa-only": Run(False, 300, 3, {"rsa_key": key}, {**encrypted, "encrypt": False}),
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    from aiofutu._crypto import generate_private_key_pem

    key = tmp_path_factory.mktemp("key") / "opend_key.pem"
    key.write_bytes(generate_private_key_pem(1024))  # the SDK only handles 1024-bit keys
    variants = _variants(str(key))
    options = {"tick_rate": 0, "unsub_min_age": 0, "sub_quota": 1, "keepalive_interval": 1}
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(len(variants)) as pool:
        futures = {}
        for name, run in variants.items():
            sim = stack.enter_context(
                background_simulator(**options, hp_volume=run.hp_volume, **run.sim)
            )
            home = tmp_path_factory.mktemp(f"home-{name}")
            futures[name] = pool.submit(_drive, sim, run, home)
        return {name: future.result() for name, future in futures.items()}


@pytest.fixture(params=["volume", "hpVolume", "aes-cbc", "aes-ecb", "rsa-only"])
def run(request: pytest.FixtureRequest, runs: dict[str, Run]) -> Run:
    result = runs[request.param]
    assert result.returncode == 0, result.stderr[-3000:]
    assert "done" in result.steps, result.stderr[-3000:]
    return result


def _expected(ticks: list[qot_common_pb2.Ticker], hp_volume: bool) -> dict[str, list[Any]]:
    """The SDK's columns, computed from the simulator's own ticks."""
    return {
        "code": [CODE] * len(ticks),
        "name": ["Tencent"] * len(ticks),
        "time": [t.time for t in ticks],
        "price": [t.price for t in ticks],
        "volume": [t.hpVolume if hp_volume else t.volume for t in ticks],
        "turnover": [t.turnover for t in ticks],
        "ticker_direction": [DIRECTION[t.dir] for t in ticks],
        "sequence": [t.sequence for t in ticks],
        "type": [TickerType.from_wire(t.type).value for t in ticks],
    }


def test_subscribe_and_get_rt_ticker_1000_match_the_simulator(run: Run) -> None:
    assert run.steps["subscribe"] == {"step": "subscribe", "ret": 0, "msg": None}
    step = run.steps["rt_ticker"]
    assert step["ret"] == 0
    frame = step["frame"]
    assert frame["columns"] == list(TICKER_COLUMNS)
    assert len(frame["rows"]["sequence"]) == 1000
    assert len(run.before) == 1000
    expected = _expected(run.before, run.hp_volume)
    for column in TICKER_COLUMNS:
        assert frame["rows"][column] == expected[column], column
    assert frame["dtypes"]["volume"] == ("float64" if run.hp_volume else "int64")
    assert frame["dtypes"]["sequence"] == "int64"
    assert frame["dtypes"]["price"] == frame["dtypes"]["turnover"] == "float64"


def test_get_rt_ticker_limit_as_the_sdk_sends_it(run: Run) -> None:
    assert run.steps["rt_ticker_5000"] == {"step": "rt_ticker_5000", "ret": 0, "rows": 1000}
    zero = run.steps["rt_ticker_0"]
    assert zero["ret"] == -1
    assert zero["msg"] == "maxRetNum must be between 1 and 1000, got 0"  # retMsg, verbatim


def test_push_handler_receives_every_burst_tick(run: Run) -> None:
    step = run.steps["pushes"]
    assert step["ok"], step
    assert step["errors"] == []
    frame = step["frame"]
    assert frame["columns"] == [*TICKER_COLUMNS, "push_data_type"]
    rows = frame["rows"]
    # The first push repeats the latest tick at subscription time; then the burst, in order.
    assert len(rows["sequence"]) == 1 + run.burst
    assert step["calls"] == 1 + run.burst // run.per_push
    expected = _expected([run.before[-1], *run.after[-run.burst :]], run.hp_volume)
    for column in TICKER_COLUMNS:
        assert rows[column] == expected[column], column
    assert set(rows["push_data_type"]) == {"REALTIME"}
    assert frame["dtypes"]["volume"] == ("float64" if run.hp_volume else "int64")


def test_query_subscription_and_quota_refusal(run: Run) -> None:
    query = run.steps["query"]
    assert query["ret"] == 0
    data = query["data"]
    assert data["sub_list"] == {"TICKER": [CODE]}
    assert (data["total_used"], data["own_used"], data["remain"]) == (1, 1, 0)
    quota = run.steps["quota"]
    assert quota["ret"] == -1
    assert quota["msg"].startswith("subscription quota exhausted: 1 of 1 used")


def test_unsubscribe_then_nothing_is_subscribed(run: Run) -> None:
    assert run.steps["unsubscribe"] == {"step": "unsubscribe", "ret": 0, "msg": None}
    after = run.steps["query_after"]
    assert after["ret"] == 0
    assert after["data"]["sub_list"] == {}
    assert (after["data"]["total_used"], after["data"]["remain"]) == (0, 1)
    refused = run.steps["rt_unsubscribed"]
    assert refused["ret"] == -1
    assert refused["msg"].startswith(f"{CODE} is not subscribed to TICKER")
    # unsubscribe() is followed by Qot_RegQotPush(isRegOrUnReg=false); it was answered.
    assert run.requests.get(3002, 0) >= 1


def test_global_state_and_keepalive(run: Run) -> None:
    state = run.steps["global_state"]
    assert state["ret"] == 0
    assert state["data"]["qot_logined"] is True
    assert state["data"]["server_ver"] == "1011" or state["data"]["server_ver"] == 1011
    assert run.requests.get(1004, 0) >= 1  # keepAliveInterval=1: the SDK pinged and was answered
    assert run.requests[1001] == 1  # one connection, never re-established


def test_encryption_as_configured(run: Run) -> None:
    """The one connection was encrypted as the variant says (or plain), never refused."""
    assert run.handshakes == {run.handshake: 1}
