"""History K-lines: one year of 1-minute bars (all pages) per client, one process per client.

``python -m benchmarks.client_history CLIENT --port PORT [--repeat N]``; clients:

``frame``   aiofutu ``request_history_kline_frame``: every page into one polars frame
``models``  aiofutu ``request_history_kline(max_count=None)``: every page as ``KLine`` models
``sdk``     the SDK's documented paging loop: ``request_history_kline(max_count=1000)``, then
            ``page_req_key`` until it is None, the pages joined with ``pd.concat``

Each process first fetches the range once, untimed (the simulator generates and caches the
bars, and the client's imports are done), then times ``--repeat`` full fetches. The result line
carries the seconds and the bar count of each. :func:`section` (the runner's ``history``
section) and :func:`rows` (its table rows) live here too, so the runner only calls them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import TYPE_CHECKING, Any

from ._common import Usage, emit, fail

if TYPE_CHECKING:
    from collections.abc import Callable

CODE = "HK.00700"
START, END = "2023-01-01", "2023-12-31"  # HK: 260 weekdays x 330 minutes = 85,800 bars
#: targets: aiofutu's frame >= 5x the SDK in bars/s, and the year in under 1.5 s
TARGET_X, TARGET_S = 5.0, 1.5


async def _aiofutu(args: argparse.Namespace) -> None:
    import aiofutu

    if args.client == "frame":
        import polars  # noqa: F401  # an analytics app has it loaded

    async with aiofutu.connect("127.0.0.1", args.port, timeout=60) as client:

        async def once() -> int:
            if args.client == "frame":
                df = await client.request_history_kline_frame(CODE, START, END, ktype="K_1M")
                return int(df.height)
            page = await client.request_history_kline(
                CODE, START, END, ktype="K_1M", max_count=None
            )
            return len(page.bars)

        await once()  # warm-up
        usage = Usage()
        usage.start()
        seconds, bars = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            bars.append(await once())
            seconds.append(time.perf_counter() - t0)
        emit("result", seconds=seconds, bars=bars, **usage.stop())


def _sdk(args: argparse.Namespace) -> None:
    import futu
    from futu.common.sys_config import SysConfig

    futu.set_futu_debug_model(False)
    SysConfig.set_all_thread_daemon(True)
    import pandas as pd

    ctx = futu.OpenQuoteContext(host="127.0.0.1", port=args.port)

    def once() -> int:
        frames = []
        key = None
        while True:
            ret, data, key = ctx.request_history_kline(
                CODE, START, END, ktype=futu.KLType.K_1M, max_count=1000, page_req_key=key
            )
            if ret != futu.RET_OK:
                raise RuntimeError(f"request_history_kline: {data}")
            frames.append(data)
            if key is None:
                break
        return len(pd.concat(frames, ignore_index=True))

    once()
    usage = Usage()
    usage.start()
    seconds, bars = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        bars.append(once())
        seconds.append(time.perf_counter() - t0)
    emit("result", seconds=seconds, bars=bars, **usage.stop())
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("client", choices=("frame", "models", "sdk"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    try:
        if args.client == "sdk":
            _sdk(args)
        else:
            import anyio

            anyio.run(_aiofutu, args)
    except Exception as exc:
        fail(f"{type(exc).__name__}: {exc}")


# -- the runner's section and rows ----------------------------------------------------------

LABELS = {
    "sdk": "SDK request_history_kline paging loop (pandas)",
    "models": "aiofutu request_history_kline (list[KLine])",
    "frame": "aiofutu request_history_kline_frame (polars)",
}


def section(runner: Any) -> None:
    """The runner's ``history`` section: each client in a fresh process, same simulator."""
    plan = runner.plan
    for client in ("frame", "models", "sdk"):
        reps = plan.sdk_repeat if client == "sdk" else plan.repeat
        args = [client, "--repeat", str(reps)]
        runner.attempt(
            "history",
            lambda c=client, a=args: {
                "client": c,
                **runner.simple_run(
                    f"history-{c}", "benchmarks.client_history", a, 600, sdk=c == "sdk"
                ),
            },
            f"1y of K_1M {client}",
        )


def rows(of: Callable[[str, str], list[dict[str, Any]]], row_type: Any) -> list[Any]:
    """Rows: seconds per year of minutes and bars/s, aiofutu against the SDK."""
    out: list[Any] = []
    rates: dict[str, float] = {}
    for client in ("sdk", "models", "frame"):
        rs = of("history", client)
        if rs:
            r = rs[0]
            rates[client] = statistics.median(
                b / s for b, s in zip(r["bars"], r["seconds"], strict=True)
            )
    for client in ("sdk", "models", "frame"):
        rs = of("history", client)
        if not rs:
            continue
        r = rs[0]
        secs = r["seconds"]
        bars = r["bars"][0]
        med = statistics.median(secs)
        row = row_type(
            "history",
            f"1y of K_1M ({bars:,} bars), seconds",
            LABELS[client],
            "s",
            med,
            min(secs),
            max(secs),
            "min..max",
            len(secs),
            False,
        )
        if client != "sdk" and "sdk" in rates:
            row.vs_sdk = rates["sdk"] / rates[client]
        if client == "frame":
            row.target = f"<{TARGET_S:g} s"
            row.met = med < TARGET_S
        out.append(row)
        per = [b / s for b, s in zip(r["bars"], secs, strict=True)]
        row = row_type(
            "history",
            "history bars/s",
            LABELS[client],
            "bars/s",
            statistics.median(per),
            min(per),
            max(per),
            "min..max",
            len(per),
            True,
        )
        if client != "sdk" and "sdk" in rates:
            row.vs_sdk = rates[client] / rates["sdk"]
            if client == "frame":
                row.target = f">={TARGET_X:g}x SDK"
                row.met = row.vs_sdk >= TARGET_X
        out.append(row)
    return out


if __name__ == "__main__":
    main()
