"""The official SDK (futu-api) side of the benchmarks, one measurement per process.

``python -m benchmarks.client_sdk MODE --port PORT [options]``; modes:

``push``     a ``TickerHandlerBase`` subclass counting the rows of the pandas frame of each push
``slow``     the same handler, blocked (sleeping) from its first call on
``rt``       ``get_rt_ticker`` latency (pandas)
``connect``  ``OpenQuoteContext(...)`` construction until ready
``snapshot`` ``get_market_snapshot`` latency (pandas) for ``--codes N``

Run it with ``HOME`` pointed at a scratch folder: importing ``futu`` creates log folders there.
It also installs a SIGINT handler that calls ``os._exit``; the runner stops it with SIGKILL.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import Any

from ._common import Usage, emit, fail, now, rss_kib


def _sdk(rsa_key: str = "") -> Any:
    import futu
    from futu.common.sys_config import SysConfig

    futu.set_futu_debug_model(False)
    SysConfig.set_all_thread_daemon(True)  # a forgotten thread must not keep us alive
    if rsa_key:  # OpenD's key: RSA InitConnect, then AES-CBC (the SDK always asks for CBC)
        SysConfig.enable_proto_encrypt(True)
        SysConfig.set_init_rsa_file(rsa_key)
    return futu


class _Counter:
    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.deliveries = 0
        self.errors = 0
        self.t_first = 0.0
        self.t_last = 0.0
        self.done = threading.Event()


def _push(args: argparse.Namespace) -> None:
    futu = _sdk(args.rsa_key)
    counter = _Counter(args.n)
    release = threading.Event()
    slow = args.mode == "slow"

    class Handler(futu.TickerHandlerBase):  # type: ignore[misc,name-defined]
        def on_recv_rsp(self, rsp_pb: Any) -> Any:
            ret, data = super().on_recv_rsp(rsp_pb)
            if ret != futu.RET_OK:
                counter.errors += 1
                return ret, data
            if slow:
                release.wait()  # the consumer sleeps; pushes pile up behind it
                return ret, data
            if not counter.count:
                counter.t_first = now()
            counter.count += len(data)
            counter.deliveries += 1
            if counter.count >= counter.n:
                counter.t_last = now()
                counter.done.set()
            return ret, data

    ctx = futu.OpenQuoteContext(host="127.0.0.1", port=args.port)
    ctx.set_handler(Handler())
    ret, msg = ctx.subscribe(
        [args.code], [futu.SubType.TICKER], is_first_push=False, subscribe_push=True
    )
    if ret != futu.RET_OK:
        fail(f"subscribe failed: {msg}")
    usage = Usage()
    usage.start()
    emit("ready")
    extra: dict[str, Any] = {}
    if slow:
        # Every push is parsed by the SDK's network thread and queued for the blocked callback
        # thread; wait until all of them are queued (the queue is the SDK's own, read only here).
        messages = -(-args.n // args.tpp)
        queue = getattr(getattr(ctx, "_callback_executor", None), "queue", None)
        deadline = time.monotonic() + args.timeout
        last_rss, stable_since = 0, time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.01)
            if queue is not None:
                if queue.qsize() >= messages - 1:
                    break
            else:  # fallback: RSS stable for 2 s after the burst
                rss = rss_kib()
                if rss != last_rss:
                    last_rss, stable_since = rss, time.monotonic()
                elif time.monotonic() - stable_since > 2.0:
                    break
        else:
            fail("timed out waiting for the pushes to be queued")
        counter.t_first = counter.t_last = now()
        counter.count = args.n
        extra["queued_messages"] = queue.qsize() if queue is not None else -1
    elif not counter.done.wait(args.timeout):
        fail(f"timed out: {counter.count} of {args.n} ticks after {args.timeout}s")
    result = usage.stop()
    emit(
        "result",
        ticks=counter.count,
        deliveries=counter.deliveries,
        errors=counter.errors,
        t_first=counter.t_first,
        t_last=counter.t_last,
        **result,
        **extra,
    )
    os._exit(0)  # do not wait for the SDK's threads (or the blocked handler)


def _rt(args: argparse.Namespace) -> None:
    futu = _sdk()
    ctx = futu.OpenQuoteContext(host="127.0.0.1", port=args.port)
    ret, msg = ctx.subscribe([args.code], [futu.SubType.TICKER], subscribe_push=False)
    if ret != futu.RET_OK:
        fail(f"subscribe failed: {msg}")
    out: dict[str, list[float]] = {}
    for num in args.nums:
        ret, data = ctx.get_rt_ticker(args.code, num)
        if ret != futu.RET_OK or len(data) != num:
            fail(f"get_rt_ticker({num}) failed: {data if ret != futu.RET_OK else len(data)}")
        for _ in range(args.warmup):
            ctx.get_rt_ticker(args.code, num)
        times = []
        for _ in range(args.calls):
            t0 = time.perf_counter()
            ret, data = ctx.get_rt_ticker(args.code, num)
            times.append(time.perf_counter() - t0)
            if ret != futu.RET_OK:
                fail(f"get_rt_ticker({num}) failed: {data}")
        out[f"pandas:{num}"] = times
    emit("result", latencies=out)
    os._exit(0)


def _connect(args: argparse.Namespace) -> None:
    futu = _sdk()
    times = []
    for i in range(args.warmup + args.count):
        t0 = time.perf_counter()
        ctx = futu.OpenQuoteContext(host="127.0.0.1", port=args.port)
        t1 = time.perf_counter()
        ctx.close()
        if i >= args.warmup:
            times.append(t1 - t0)
    emit("result", latencies=times)
    os._exit(0)


def _snapshot(args: argparse.Namespace) -> None:
    futu = _sdk()
    codes = [f"HK.{10_000 + i:05d}" for i in range(args.codes)]  # as client_aiofutu's
    ctx = futu.OpenQuoteContext(host="127.0.0.1", port=args.port)
    ret, data = ctx.get_market_snapshot(codes)
    if ret != futu.RET_OK or len(data) != len(codes):
        fail(f"get_market_snapshot failed: {data if ret != futu.RET_OK else len(data)}")
    for _ in range(args.warmup):
        ctx.get_market_snapshot(codes)
    times = []
    for _ in range(args.calls):
        t0 = time.perf_counter()
        ret, data = ctx.get_market_snapshot(codes)
        times.append(time.perf_counter() - t0)
        if ret != futu.RET_OK:
            fail(f"get_market_snapshot failed: {data}")
    emit("result", latencies={f"pandas:{len(codes)}": times})
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=("push", "slow", "rt", "connect", "snapshot"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--code", default="HK.00700")
    parser.add_argument("--n", type=int, default=200_000, help="ticks expected")
    parser.add_argument("--tpp", type=int, default=1, help="ticks per push (slow mode)")
    parser.add_argument("--nums", type=lambda s: [int(x) for x in s.split(",")], default=[1000])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--codes", type=int, default=400, help="codes per snapshot call")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--rsa-key", default="", help="encrypt with OpenD's RSA key (PEM file)")
    args = parser.parse_args()
    run = {"rt": _rt, "connect": _connect, "snapshot": _snapshot}.get(args.mode, _push)
    try:
        run(args)
    except Exception as exc:
        fail(f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main()
