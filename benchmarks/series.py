"""The K-line rows of the benchmarks (``--only kline,klinepush``), beside the SDK, same run.

``kline``: ``get_cur_kline(code, 1000)`` latency as ``list[KLine]`` and as polars, against the
SDK's pandas ``get_cur_kline``. ``klinepush``: a burst of ticks of ``HK.00700`` (each one a 3007
push of the open 1-minute bar) into ``async for`` over ``kline_stream`` and into the SDK's
``CurKlineHandlerBase``; rate = pushes / (last push delivered - first byte of the burst
written), as for the ticker rows. Targets: >= 5x the SDK each.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runner import Bench, Row

__all__ = ("SERIES_SECTIONS", "kline_section", "klinepush_section", "series_rows")

SERIES_SECTIONS = ("kline", "klinepush")
_MODULE = "benchmarks.client_series"
_CODE = "HK.00700"
_TARGET = 5.0


def kline_section(bench: Bench) -> None:
    plan = bench.plan
    calls = str(max(plan.rt_calls // 4, 10))
    for client in ("aiofutu", "sdk"):
        args = [f"{client}-kline", "--code", _CODE, "--num", "1000", "--calls", calls]
        bench.attempt(
            "kline",
            lambda c=client, a=args: {
                "client": c,
                **bench.simple_run(f"kline-{c}", _MODULE, a, 240, sdk=c == "sdk"),
            },
            f"get_cur_kline {client}",
        )


def _push_run(bench: Bench, client: str, n: int, rep: int) -> dict[str, Any]:
    from .runner import BenchError

    timeout = 60.0 + n / (500.0 if client == "sdk" else 5_000.0)
    args = [f"{client}-push", "--code", _CODE, "--n", str(n), "--timeout", f"{timeout - 10:.0f}"]
    sim = bench.sim
    assert sim is not None
    proc = bench.child(f"klinepush-{client}-{rep}", _MODULE, args, sdk=client == "sdk")
    ok = False
    try:
        proc.expect("ready", 60)
        sim.send(f"burst {_CODE} {n} 1")
        done = sim.expect("done", timeout)
        result = proc.expect("result", timeout)
        proc.finish()
        ok = True
    finally:
        proc.kill()
        if not ok:
            bench.start_sim()
    if result["pushes"] < n:
        raise BenchError(f"{proc.name}: only {result['pushes']} of {n} pushes")
    elapsed = result["t_last"] - done["t_write_start"]
    return {
        "client": client,
        "pushes": n,
        "rep": rep,
        "rate": n / elapsed if elapsed > 0 else float("inf"),
        "cpu_us_per_push": result["cpu_s"] / n * 1e6,
        "sim": {k: v for k, v in done.items() if k != "event"},
        "client_result": {k: v for k, v in result.items() if k != "event"},
    }


def klinepush_section(bench: Bench) -> None:
    plan = bench.plan
    n = 5_000 if plan.quick else 20_000
    for client, reps, count in (
        ("aiofutu", plan.repeat, n),
        ("sdk", plan.sdk_repeat, max(n // 4, 2_000)),
    ):
        for rep in range(reps):
            bench.attempt(
                "klinepush",
                lambda c=client, k=count, r=rep: _push_run(bench, c, k, r),
                f"kline_stream {client} #{rep + 1}",
            )


def series_rows(runs: list[dict[str, Any]], row_type: type[Row]) -> list[Row]:
    """The table rows of the two sections."""
    rows: list[Row] = []
    lat = {r["client"]: r["latencies"] for r in runs if r["section"] == "kline"}
    sdk_values = lat.get("sdk", {}).get("pandas:1000")
    for client, key, label in (
        ("sdk", "pandas:1000", "SDK get_cur_kline (pandas)"),
        ("aiofutu", "list:1000", "aiofutu get_cur_kline (list[KLine])"),
        ("aiofutu", "polars:1000", "aiofutu get_cur_kline_frame (polars)"),
    ):
        values = lat.get(client, {}).get(key)
        if not values:
            continue
        ms = sorted(v * 1e3 for v in values)
        p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
        row = row_type(
            "kline", "get_cur_kline(1000)", label, "ms", statistics.median(ms), ms[0], p99,
            "p99", len(ms), False,
        )  # fmt: skip
        if client == "aiofutu" and sdk_values:
            row.vs_sdk = row.median / (statistics.median(sdk_values) * 1e3)
            row.target = f">={_TARGET:g}x faster"
            row.met = 1 / row.vs_sdk >= _TARGET
        rows.append(row)
    rates = {
        c: [r["rate"] for r in runs if r["section"] == "klinepush" and r["client"] == c]
        for c in ("sdk", "aiofutu")
    }
    for client, label in (
        ("sdk", "SDK CurKlineHandlerBase (pandas per push)"),
        ("aiofutu", "aiofutu async for kline_stream (KLineUpdate)"),
    ):
        values = rates[client]
        if not values:
            continue
        row = row_type(
            "klinepush", "K-line push 1 bar/msg", label, "pushes/s", statistics.median(values),
            min(values), max(values), "min..max", len(values), True,
        )  # fmt: skip
        if client == "aiofutu" and rates["sdk"]:
            row.vs_sdk = row.median / statistics.median(rates["sdk"])
            row.target = f">={_TARGET:g}x SDK"
            row.met = row.vs_sdk >= _TARGET
        rows.append(row)
    return rows
