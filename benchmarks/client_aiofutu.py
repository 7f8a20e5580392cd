"""The aiofutu side of the benchmarks, one measurement per process.

``python -m benchmarks.client_aiofutu MODE --port PORT [options]``; modes:

``models``   ``async for`` over ``client.ticker_stream(...)``, counting ``Ticker`` models
``frames``   ``async for`` over ``client.ticker_frames(...)``, counting rows
``slow``     a ``ticker_stream`` with a bounded ``drop_oldest`` buffer that is never read
``rt``       ``get_rt_ticker`` / ``get_rt_ticker_frame`` latency
``connect``  ``async with aiofutu.connect(...)`` until ready
``snapshot`` ``get_market_snapshot`` / ``get_market_snapshot_frame`` latency for ``--codes N``

The push modes print ``ready`` once subscribed, then wait for the burst the runner commands.
"""

from __future__ import annotations

import argparse
import cProfile
import time
from typing import Any

import anyio

from ._common import Usage, emit, fail, now


class _Profiler:
    """cProfile stats to ``PATH.prof``, or a pyinstrument text report to ``PATH.txt``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.impl: Any = None
        if path.endswith(".txt"):
            from pyinstrument import Profiler  # not a dependency: pip install pyinstrument

            self.impl = Profiler(interval=0.0005, async_mode="disabled")
        elif path:
            self.impl = cProfile.Profile()

    def start(self) -> None:
        if isinstance(self.impl, cProfile.Profile):
            self.impl.enable()
        elif self.impl is not None:
            self.impl.start()

    def stop(self) -> None:
        if isinstance(self.impl, cProfile.Profile):
            self.impl.disable()
        elif self.impl is not None:
            self.impl.stop()

    def save(self) -> None:
        if isinstance(self.impl, cProfile.Profile):
            self.impl.dump_stats(self.path)
        elif self.impl is not None:
            with open(self.path, "w") as f:
                f.write(self.impl.output_text(unicode=False, color=False, show_all=False))


async def _push(args: argparse.Namespace) -> None:
    import aiofutu

    if args.mode == "frames":
        import polars  # noqa: F401  # an analytics app has it loaded; keep the import untimed

    n = args.n
    usage = Usage()
    profiler = _Profiler(args.profile)
    rsa_key = args.rsa_key or None  # encrypted: RSA InitConnect, then AES-CBC
    async with aiofutu.connect(
        "127.0.0.1", args.port, rsa_private_key=rsa_key, transport=args.transport
    ) as client:
        stream: Any
        if args.mode == "frames":
            stream = client.ticker_frames(
                args.code,
                max_rows=args.max_rows,
                max_latency=args.max_latency,
                buffer=args.buffer,
                overflow=args.overflow,
                is_first_push=False,
            )
        else:
            stream = client.ticker_stream(
                args.code, buffer=args.buffer, overflow=args.overflow, is_first_push=False
            )
        async with stream:
            usage.start()
            emit("ready")
            count = 0
            deliveries = 0
            t_first = 0.0
            t_last = 0.0
            with anyio.move_on_after(args.timeout) as scope:
                profiler.start()
                if args.mode == "models":
                    async for _tick in stream:
                        if not count:
                            t_first = now()
                        count += 1
                        if count >= n:
                            break
                    deliveries = count
                elif args.mode == "frames":
                    async for frame in stream:
                        if not count:
                            t_first = now()
                        count += frame.height
                        deliveries += 1
                        if count >= n:
                            break
                else:  # slow: never read; wait until every tick reached the stream
                    while stream.received < n:  # noqa: ASYNC110  # polling a counter
                        await anyio.sleep(0.01)
                    t_first = now()
                    count = stream.received
                t_last = now()
                profiler.stop()
            if scope.cancelled_caught:
                fail(
                    f"timed out after {args.timeout:g}s: {count} of {n} ticks delivered, "
                    f"{stream.received} received by the stream"
                )
            result = usage.stop()
            extra: dict[str, Any] = {}
            if args.mode == "slow":
                extra = {"dropped": stream.dropped, "pending": stream.pending}
    profiler.save()
    emit(
        "result",
        ticks=count,
        deliveries=deliveries,
        t_first=t_first,
        t_last=t_last,
        **result,
        **extra,
    )


async def _rt(args: argparse.Namespace) -> None:
    import polars  # noqa: F401  # loaded before timing, as in an app that asks for frames

    import aiofutu

    out: dict[str, list[float]] = {}
    async with aiofutu.connect("127.0.0.1", args.port) as client:
        await client.subscribe([args.code], [aiofutu.SubType.TICKER], subscribe_push=False)
        for num in args.nums:
            for kind in ("list", "polars"):
                call: Any = client.get_rt_ticker if kind == "list" else client.get_rt_ticker_frame
                got = await call(args.code, num)
                if len(got) != num:
                    fail(f"get_rt_ticker({num}) returned {len(got)} rows")
                for _ in range(args.warmup):
                    await call(args.code, num)
                times = []
                for _ in range(args.calls):
                    t0 = time.perf_counter()
                    await call(args.code, num)
                    times.append(time.perf_counter() - t0)
                out[f"{kind}:{num}"] = times
    emit("result", latencies=out)


async def _connect(args: argparse.Namespace) -> None:
    import aiofutu

    times = []
    for i in range(args.warmup + args.count):
        t0 = time.perf_counter()
        async with aiofutu.connect("127.0.0.1", args.port) as client:
            t1 = time.perf_counter()
            if not client.connected:
                fail("client not connected inside async with")
        if i >= args.warmup:
            times.append(t1 - t0)
    emit("result", latencies=times)


def snapshot_codes(n: int) -> list[str]:
    """The codes of the snapshot rows (the simulator runs with ``--allow-any-code``)."""
    return [f"HK.{10_000 + i:05d}" for i in range(n)]


async def _snapshot(args: argparse.Namespace) -> None:
    import polars  # noqa: F401  # loaded before timing, as in an app that asks for frames

    import aiofutu

    codes = snapshot_codes(args.codes)
    out: dict[str, list[float]] = {}
    async with aiofutu.connect("127.0.0.1", args.port, timeout=60) as client:
        for kind in ("models", "polars"):
            call: Any = (
                client.get_market_snapshot if kind == "models" else client.get_market_snapshot_frame
            )
            got = await call(codes)
            if len(got) != len(codes):
                fail(f"get_market_snapshot returned {len(got)} rows for {len(codes)} codes")
            for _ in range(args.warmup):
                await call(codes)
            times = []
            for _ in range(args.calls):
                t0 = time.perf_counter()
                await call(codes)
                times.append(time.perf_counter() - t0)
            out[f"{kind}:{len(codes)}"] = times
    emit("result", latencies=out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=("models", "frames", "slow", "rt", "connect", "snapshot"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--code", default="HK.00700")
    parser.add_argument("--n", type=int, default=200_000, help="ticks expected")
    parser.add_argument("--buffer", type=int, default=10_000)
    parser.add_argument("--overflow", default="block")
    parser.add_argument("--max-rows", type=int, default=10_000)
    parser.add_argument("--max-latency", type=float, default=0.1)
    parser.add_argument("--nums", type=lambda s: [int(x) for x in s.split(",")], default=[1000])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--codes", type=int, default=400, help="codes per snapshot call")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--rsa-key", default="", help="encrypt with OpenD's RSA key (PEM file)")
    parser.add_argument(
        "--transport", default="tcp", choices=("tcp", "websocket"), help="--port is its port"
    )
    parser.add_argument(
        "--profile", default="", help="profile the push loop: *.prof cProfile, *.txt pyinstrument"
    )
    args = parser.parse_args()
    run = {"rt": _rt, "connect": _connect, "snapshot": _snapshot}.get(args.mode, _push)
    try:
        anyio.run(run, args)
    except Exception as exc:
        fail(f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main()
