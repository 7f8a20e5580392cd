"""The ``state`` section of ``python -m benchmarks``: quotes, order books and broker queues.

Requests (``get_stock_quote`` of 1 and 50 codes, ``get_order_book(code, 10)``,
``get_broker_queue``) and order-book push throughput (10 levels a side, ``conflate=False``,
into ``async for``) against the SDK's ``OrderBookHandlerBase``; each in its own process
(``benchmarks.client_state``), the simulator the runner's (``books CODE N`` bursts).
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runner import Bench, Row

__all__ = ("state_rows", "state_section")

CODE = "HK.00700"
MODULE = "benchmarks.client_state"
#: targets: requests at least this many times faster than the SDK; book pushes this many x
REQUEST_TARGET = 5.0
BOOK_TARGET = 30.0
REQUESTS = (
    ("quote:1", "get_stock_quote(1 code)", "get_stock_quote"),
    ("quote:50", "get_stock_quote(50 codes)", "get_stock_quote"),
    ("book:10", "get_order_book(code, 10)", "get_order_book"),
    ("broker", "get_broker_queue(code)", "get_broker_queue"),
)


def _books_run(bench: Bench, client: str, n: int, rep: int) -> dict[str, Any]:
    from .runner import BenchError

    sim = bench.sim
    assert sim is not None
    sdk = client == "sdk-books"
    timeout = 60.0 + n / (500.0 if sdk else 5_000.0)
    args = [client, "--code", CODE, "--n", str(n), "--timeout", f"{timeout - 10:.0f}"]
    proc = bench.child(f"{client}-{rep}", MODULE, args, sdk=sdk)
    ok = False
    try:
        proc.expect("ready", 60)
        sim.send(f"books {CODE} {n}")
        done = sim.expect("done", timeout)
        result = proc.expect("result", timeout)
        proc.finish()
        ok = True
    finally:
        proc.kill()
        if not ok:
            bench.start_sim()
    if result["ticks"] < n:
        raise BenchError(f"{proc.name}: only {result['ticks']} of {n} books")
    elapsed = result["t_last"] - done["t_write_start"]
    return {
        "client": client,
        "books": n,
        "rep": rep,
        "rate": n / elapsed if elapsed > 0 else float("inf"),
        "cpu_us_per_book": result["cpu_s"] / n * 1e6,
        "maxrss_mib": result["maxrss_kib"] / 1024,
        "sim": {k: v for k, v in done.items() if k != "event"},
    }


def state_section(bench: Bench) -> None:
    """Run the requests of both clients, then the book bursts."""
    plan = bench.plan
    common = ["--calls", str(plan.rt_calls), "--warmup", str(plan.rt_warmup), "--code", CODE]
    for client, sdk in (("requests", False), ("sdk-requests", True)):
        bench.attempt(
            "state",
            lambda c=client, s=sdk: {
                "client": c,
                **bench.simple_run(f"state-{c}", MODULE, [c, *common], 300, sdk=s),
            },
            f"{client}",
        )
    n = 5_000 if plan.quick else 20_000
    for rep in range(max(plan.repeat, plan.sdk_repeat)):
        for client in ("books", "sdk-books"):
            reps = plan.sdk_repeat if client == "sdk-books" else plan.repeat
            if rep < reps:
                bench.attempt(
                    "state",
                    lambda c=client, r=rep: _books_run(bench, c, n, r),
                    f"{client} 10 levels #{rep + 1}",
                )


def state_rows(runs: list[dict[str, Any]]) -> list[Row]:
    """The table rows of the section, each with its ratio to the SDK and target."""
    from .runner import Row, _p99

    rows: list[Row] = []
    mine = [r for r in runs if r["section"] == "state"]
    lat = {r["client"]: r["latencies"] for r in mine if "latencies" in r}
    for key, measurement, name in REQUESTS:
        sdk_ms: float | None = None
        for client, label in (
            ("sdk-requests", f"SDK {name} (pandas)"),
            ("requests", f"aiofutu {name} (models)"),
        ):
            values = lat.get(client, {}).get(key)
            if not values:
                continue
            ms = [v * 1e3 for v in values]
            med = statistics.median(ms)
            row = Row("state", measurement, label, "ms", med, min(ms), _p99(ms), "p99", len(ms),
                      False)  # fmt: skip
            if client == "sdk-requests":
                sdk_ms = med
            elif sdk_ms:
                row.vs_sdk = med / sdk_ms
                row.target = f">={REQUEST_TARGET:g}x faster"
                row.met = sdk_ms / med >= REQUEST_TARGET
            rows.append(row)
    sdk_rate: float | None = None
    for client, label in (
        ("sdk-books", "SDK OrderBookHandlerBase (dict per push)"),
        ("books", "aiofutu async for order_book_stream(conflate=False)"),
    ):
        rates = [r["rate"] for r in mine if r["client"] == client and "rate" in r]
        if not rates:
            continue
        med = statistics.median(rates)
        row = Row("state", "order-book pushes, 10 levels a side", label, "books/s", med,
                  min(rates), max(rates), "min..max", len(rates), True)  # fmt: skip
        if client == "sdk-books":
            sdk_rate = med
        elif sdk_rate:
            row.vs_sdk = med / sdk_rate
            row.target = f">={BOOK_TARGET:g}x SDK"
            row.met = row.vs_sdk >= BOOK_TARGET
        rows.append(row)
    for client, label in (
        ("sdk-books", "SDK OrderBookHandlerBase"),
        ("books", "aiofutu order_book_stream"),
    ):
        cpu = [r["cpu_us_per_book"] for r in mine if r["client"] == client and "rate" in r]
        if cpu:
            med = statistics.median(cpu)
            rows.append(Row("state", "CPU per book push", label, "us/tick", med, min(cpu),
                            max(cpu), "min..max", len(cpu), False))  # fmt: skip
    return rows
