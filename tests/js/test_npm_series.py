"""The npm ``futu-api`` SDK and aiofutu read the same K-lines and time share from one simulator.

``series_kinds.mjs`` (one Node process, HK and US codes) subscribes K_1M, K_DAY and RT with
push over the simulator's WebSocket gateway, asks GetKL (3006) with a count for both periods,
GetRT (3008) and one page of RequestHistoryKL (3103), then prints every 3007/3009 push. A Python
client on the TCP port of the same simulator makes the same requests and streams; the test pushes
ticks over three minutes and compares, field for field: the replies, and the streams' updates
with what the pushes imply under OpenD's upsert rule (same time: an update, a newer time: the
open item closes with its last values, an unchanged repeat: nothing).
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

import aiofutu
from aiofutu import KLType, sim

JS = Path(__file__).resolve().parent

CODES = ("HK.00700", "US.AAPL")
COUNT = 5
PAGE = 7
BEGIN, END = "2024-01-02", "2024-03-28"
#: tick batches pushed after Node is ready: (minutes from now, ticks)
BATCHES = ((0, 2), (1, 2), (2, 1))
PUSHES = 1 + len(BATCHES)  # the first push, then one per batch, per (code, kind)
KL_TYPES = {"K_1M": 1, "K_DAY": 2}


def _bar(k: dict[str, Any]) -> dict[str, Any]:
    """A ``Qot_Common.KLine`` as Node printed it, as the fields of :class:`aiofutu.KLine`."""
    names = {
        "open": "openPrice", "close": "closePrice", "high": "highPrice", "low": "lowPrice",
        "last_close": "lastClosePrice", "turnover": "turnover", "turnover_rate": "turnoverRate",
        "pe": "pe", "change_rate": "changeRate", "timestamp": "timestamp",
    }  # fmt: skip
    out = {"time": k["time"], "is_blank": k["isBlank"], **{a: k.get(w) for a, w in names.items()}}
    out["volume"] = _volume(k)
    return out


def _point(p: dict[str, Any]) -> dict[str, Any]:
    """A ``Qot_Common.TimeShare`` as Node printed it, as the fields of :class:`aiofutu.RTPoint`."""
    names = {
        "price": "price", "last_close": "lastClosePrice", "avg_price": "avgPrice",
        "turnover": "turnover", "timestamp": "timestamp",
    }  # fmt: skip
    out = {"time": p["time"], "minute": p["minute"], "is_blank": p["isBlank"]}
    out.update({a: p.get(w) for a, w in names.items()})
    out["volume"] = _volume(p)
    return out


def _volume(item: dict[str, Any]) -> float | None:
    if "hpVolume" in item:
        return float(item["hpVolume"])
    if "volume" in item:
        assert isinstance(item["volume"], str)  # int64: an exact decimal string
        return float(int(item["volume"]))
    return None


def _upserts(items: list[dict[str, Any]]) -> list[tuple[bool, dict[str, Any]]]:
    """(closed, item) updates a stream owes for pushed ``items``, by OpenD's upsert rule."""
    out: list[tuple[bool, dict[str, Any]]] = []
    cur: dict[str, Any] | None = None
    for item in items:
        if cur is None or item["time"] > cur["time"]:
            if cur is not None:
                out.append((True, cur))
            cur = item
            out.append((False, item))
        elif item["time"] == cur["time"] and item != cur:
            cur = item
            out.append((False, item))
    return out


async def _lines(proc: Any) -> Any:
    """The script's tagged events, one by one."""
    buffer = b""
    async for chunk in proc.stdout:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.startswith(b"SERIES "):
                yield json.loads(line[7:])


async def _read_all(stream: Any) -> bytes:
    data = b""
    async for chunk in stream:
        data += chunk
    return data


async def _take(stream: Any, n: int) -> list[Any]:
    out: list[Any] = []
    with anyio.fail_after(5):
        async for update in stream:
            out.append(update)
            if len(out) == n:
                break
    return out


def _push_batch(server: sim.Simulator, minute: int, n: int) -> None:
    for code in CODES:
        sec = server.market.security(code)
        server.push_ticks(sec, sec.generate(n, now=time.time() + 60 * minute))


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_series_kinds_match_aiofutu(node: str) -> None:
    events: dict[str, list[dict[str, Any]]] = {}
    async with (
        sim.serve(port=0, tick_rate=0, websocket_port=0, codes=CODES) as server,
        aiofutu.connect("127.0.0.1", server.port, timeout=5) as client,
        client.kline_stream(*CODES, ktype="K_1M") as m1,
        client.kline_stream(*CODES, ktype=KLType.K_DAY) as day,
        client.rt_stream(*CODES) as rt,
    ):
        args = [node, str(JS / "series_kinds.mjs"), "--port", str(server.websocket_port)]
        args += ["--codes", ",".join(CODES), "--count", str(COUNT), "--pushes", str(PUSHES)]
        args += ["--begin", BEGIN, "--end", END, "--page", str(PAGE)]
        mine: dict[str, Any] = {}
        with anyio.fail_after(20):
            async with await anyio.open_process(args, cwd=JS) as proc:
                async for event in _lines(proc):
                    events.setdefault(event["event"], []).append(event)
                    if event["event"] != "ready":
                        continue
                    for code in CODES:  # the same requests, before the ticks move the bars
                        for period in KL_TYPES:
                            mine[f"kl {code} {period}"] = await client.get_cur_kline(
                                code, COUNT, period
                            )
                        mine[f"rt {code}"] = await client.get_rt_data(code)
                        mine[f"history {code}"] = await client.request_history_kline(
                            code, BEGIN, END, "K_DAY", max_count=PAGE
                        )
                    for minute, n in BATCHES:
                        _push_batch(server, minute, n)
                rc = await proc.wait()
                stderr = await _read_all(proc.stderr)
        assert rc == 0 and stderr == b"", (events, stderr)
        pushes: dict[str, list[dict[str, Any]]] = {}
        for push in events["push"]:
            assert push["retType"] == 0
            pushes.setdefault(push["key"], []).append(push["s2c"])
        want: dict[str, list[tuple[bool, dict[str, Any]]]] = {}
        for code in CODES:
            for period, kl_type in KL_TYPES.items():
                got = pushes[f"{code} 3007 {kl_type}"]
                assert len(got) == PUSHES and all(s["rehabType"] == 1 for s in got)
                want[f"{code} {period}"] = _upserts([_bar(k) for s in got for k in s["klList"]])
            got = pushes[f"{code} 3009"]
            assert len(got) == PUSHES
            want[f"{code} RT"] = _upserts([_point(p) for s in got for p in s["rtList"]])
        seen: dict[str, list[tuple[bool, dict[str, Any]]]] = {}
        for period, stream in (("K_1M", m1), ("K_DAY", day), ("RT", rt)):
            n = sum(len(want[f"{code} {period}"]) for code in CODES)
            for u in await _take(stream, n):
                item = u.point if period == "RT" else u.bar
                seen.setdefault(f"{u.code} {period}", []).append((u.closed, item.model_dump()))
        await anyio.sleep(0.1)
        assert (m1.pending, day.pending, rt.pending) == (0, 0, 0)  # nothing more than owed

    assert seen == want
    for code in CODES:  # each new batch minute closed the one before (the first may close too)
        assert sum(closed for closed, _ in want[f"{code} K_1M"]) >= len(BATCHES) - 1
        assert sum(closed for closed, _ in want[f"{code} RT"]) >= len(BATCHES) - 1

    assert events["sub"] == [{"event": "sub", "retType": 0}]
    for reply in events["kl"]:
        bars = mine[f"kl {reply['code']} {reply['period']}"]
        assert reply["retType"] == 0 and len(bars) == COUNT
        assert [_bar(k) for k in reply["s2c"]["klList"]] == [b.model_dump() for b in bars]
    for reply in events["rt"]:
        points = mine[f"rt {reply['code']}"]
        assert reply["retType"] == 0 and len(points) > 1
        assert [_point(p) for p in reply["s2c"]["rtList"]] == [p.model_dump() for p in points]
    for reply in events["history"]:
        page = mine[f"history {reply['code']}"]
        assert reply["retType"] == 0 and len(page.bars) == PAGE
        assert [_bar(k) for k in reply["s2c"]["klList"]] == [b.model_dump() for b in page.bars]
        assert page.bars[0].time == f"{BEGIN} 00:00:00"
        assert page.next_key is not None  # the range holds more than one page
        assert base64.b64decode(reply["s2c"]["nextReqKey"]) == page.next_key.key
    assert {e["code"] for e in events["history"]} == set(CODES)
