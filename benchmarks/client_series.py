"""The K-line benchmark clients, aiofutu and the official SDK, one measurement per process.

``python -m benchmarks.client_series MODE --port PORT [options]``; modes:

``aiofutu-kline``  ``get_cur_kline(code, 1000)`` (``list[KLine]``) and ``get_cur_kline_frame``
                   (polars) latency
``sdk-kline``      the SDK's ``get_cur_kline(code, 1000)`` (pandas) latency
``aiofutu-push``   ``async for`` over ``client.kline_stream(...)``: K_1M pushes (3007) of a burst
``sdk-push``       a ``CurKlineHandlerBase`` subclass counting its calls (one per push)

The push modes subscribe K_1M with push (no first push), print ``ready`` and wait for the burst
the runner commands: every tick of it is one 3007 push of the open bar. Run the SDK modes with
``HOME`` pointed at a scratch folder.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import Any

from ._common import Usage, emit, fail, now


async def _aiofutu_kline(args: argparse.Namespace) -> None:
    import polars  # noqa: F401  # loaded before timing, as in an app that asks for frames

    import aiofutu

    out: dict[str, list[float]] = {}
    async with aiofutu.connect("127.0.0.1", args.port) as client:
        await client.subscribe([args.code], [aiofutu.SubType.K_1M], subscribe_push=False)
        for kind in ("list", "polars"):
            call: Any = client.get_cur_kline if kind == "list" else client.get_cur_kline_frame
            got = await call(args.code, args.num, aiofutu.KLType.K_1M)
            if len(got) != args.num:
                fail(f"get_cur_kline({args.num}) returned {len(got)} bars")
            for _ in range(args.warmup):
                await call(args.code, args.num, aiofutu.KLType.K_1M)
            times = []
            for _ in range(args.calls):
                t0 = time.perf_counter()
                await call(args.code, args.num, aiofutu.KLType.K_1M)
                times.append(time.perf_counter() - t0)
            out[f"{kind}:{args.num}"] = times
    emit("result", latencies=out)


def _sdk(args: argparse.Namespace) -> Any:
    import futu
    from futu.common.sys_config import SysConfig

    futu.set_futu_debug_model(False)
    SysConfig.set_all_thread_daemon(True)
    return futu


def _sdk_kline(args: argparse.Namespace) -> None:
    futu = _sdk(args)
    ctx = futu.OpenQuoteContext(host="127.0.0.1", port=args.port)
    ret, msg = ctx.subscribe([args.code], [futu.SubType.K_1M], subscribe_push=False)
    if ret != futu.RET_OK:
        fail(f"subscribe failed: {msg}")
    ret, data = ctx.get_cur_kline(args.code, args.num, futu.KLType.K_1M)
    if ret != futu.RET_OK or len(data) != args.num:
        fail(f"get_cur_kline({args.num}) failed: {data if ret != futu.RET_OK else len(data)}")
    for _ in range(args.warmup):
        ctx.get_cur_kline(args.code, args.num, futu.KLType.K_1M)
    times = []
    for _ in range(args.calls):
        t0 = time.perf_counter()
        ret, data = ctx.get_cur_kline(args.code, args.num, futu.KLType.K_1M)
        times.append(time.perf_counter() - t0)
        if ret != futu.RET_OK:
            fail(f"get_cur_kline failed: {data}")
    emit("result", latencies={f"pandas:{args.num}": times})
    os._exit(0)


async def _aiofutu_push(args: argparse.Namespace) -> None:
    import anyio

    import aiofutu

    n = args.n
    usage = Usage()
    async with (
        aiofutu.connect("127.0.0.1", args.port) as client,
        client.kline_stream(
            args.code, ktype="K_1M", buffer=100_000, overflow="block", is_first_push=False
        ) as stream,
    ):
        usage.start()
        emit("ready")
        pushes = 0
        updates = 0
        t_first = t_last = 0.0
        with anyio.move_on_after(args.timeout) as scope:
            async for update in stream:
                if not updates:
                    t_first = now()
                updates += 1
                if not update.closed:  # one open-bar update per push
                    pushes += 1
                    if pushes >= n:
                        break
            t_last = now()
        if scope.cancelled_caught:
            fail(f"timed out: {pushes} of {n} pushes")
        result = usage.stop()
    emit("result", pushes=pushes, updates=updates, t_first=t_first, t_last=t_last, **result)


def _sdk_push(args: argparse.Namespace) -> None:
    futu = _sdk(args)
    done = threading.Event()
    state = {"calls": 0, "rows": 0, "errors": 0, "t_first": 0.0, "t_last": 0.0}

    class Handler(futu.CurKlineHandlerBase):  # type: ignore[misc,name-defined]
        def on_recv_rsp(self, rsp_pb: Any) -> Any:
            ret, data = super().on_recv_rsp(rsp_pb)
            if ret != futu.RET_OK:
                state["errors"] += 1
                return ret, data
            if not state["calls"]:
                state["t_first"] = now()
            state["calls"] += 1
            state["rows"] += len(data)
            if state["calls"] >= args.n:
                state["t_last"] = now()
                done.set()
            return ret, data

    ctx = futu.OpenQuoteContext(host="127.0.0.1", port=args.port)
    ctx.set_handler(Handler())
    ret, msg = ctx.subscribe([args.code], [futu.SubType.K_1M], is_first_push=False)
    if ret != futu.RET_OK:
        fail(f"subscribe failed: {msg}")
    usage = Usage()
    usage.start()
    emit("ready")
    if not done.wait(args.timeout):
        fail(f"timed out: {state['calls']} of {args.n} pushes")
    result = usage.stop()
    emit(
        "result",
        pushes=state["calls"],
        updates=state["rows"],
        errors=state["errors"],
        t_first=state["t_first"],
        t_last=state["t_last"],
        **result,
    )
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=("aiofutu-kline", "sdk-kline", "aiofutu-push", "sdk-push"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--code", default="HK.00700")
    parser.add_argument("--num", type=int, default=1000)
    parser.add_argument("--n", type=int, default=20_000, help="pushes expected")
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    try:
        if args.mode.startswith("sdk"):
            (_sdk_kline if args.mode == "sdk-kline" else _sdk_push)(args)
        else:
            import anyio

            anyio.run(_aiofutu_kline if args.mode == "aiofutu-kline" else _aiofutu_push, args)
    except Exception as exc:
        fail(f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main()
