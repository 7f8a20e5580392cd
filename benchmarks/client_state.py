"""The state kinds' benchmarks (quotes, order books, broker queues), one measurement per process.

``python -m benchmarks.client_state MODE --port PORT [options]``; modes:

``requests``      aiofutu ``get_stock_quote`` (1 and 50 codes), ``get_order_book(code, 10)``
                  and ``get_broker_queue`` latency
``sdk-requests``  the same calls of the official SDK (pandas)
``books``         ``async for`` over ``client.order_book_stream(code, conflate=False)``,
                  counting ``OrderBook`` models
``sdk-books``     an ``OrderBookHandlerBase`` subclass counting the dicts of each push

The book modes print ``ready`` once subscribed, then wait for the ``books`` burst the runner
commands (``benchmarks.sim_proc``). Run the SDK modes with ``HOME`` pointed at a scratch folder.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import Any

from ._common import Usage, emit, fail, now

CODES_50 = (
    "HK.00700 HK.09988 HK.00005 HK.00001 HK.00002 HK.00003 HK.00011 HK.00016 HK.00027 HK.00066 "
    "HK.00175 HK.00267 HK.00288 HK.00386 HK.00388 HK.00669 HK.00762 HK.00823 HK.00857 HK.00883 "
    "HK.00939 HK.00941 HK.00968 HK.01024 HK.01038 HK.01093 HK.01109 HK.01177 HK.01211 HK.01234 "
    "HK.01299 HK.01398 HK.01810 HK.01876 HK.01928 HK.02020 HK.02318 HK.02388 HK.02628 HK.02800 "
    "HK.03033 HK.03690 HK.03988 HK.09618 HK.09888 HK.09999 US.AAPL US.MSFT US.NVDA US.AMZN"
).split()
#: measurement key -> what it calls
CALLS = ("quote:1", "quote:50", "book:10", "broker")


def _time(call: Any, calls: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return times


async def _requests(args: argparse.Namespace) -> None:
    import aiofutu

    code = args.code
    out: dict[str, list[float]] = {}
    async with aiofutu.connect("127.0.0.1", args.port) as client:
        await client.subscribe(CODES_50, [aiofutu.SubType.QUOTE], subscribe_push=False)
        await client.subscribe(
            [code], [aiofutu.SubType.ORDER_BOOK, aiofutu.SubType.BROKER], subscribe_push=False
        )
        calls: dict[str, Any] = {
            "quote:1": lambda: client.get_stock_quote([code]),
            "quote:50": lambda: client.get_stock_quote(CODES_50),
            "book:10": lambda: client.get_order_book(code, 10),
            "broker": lambda: client.get_broker_queue(code),
        }
        quotes = await calls["quote:50"]()
        book = await calls["book:10"]()
        if len(quotes) != 50 or len(book.bids) != 10:
            fail(f"unexpected replies: {len(quotes)} quotes, {len(book.bids)} bid levels")
        for key, call in calls.items():
            for _ in range(args.warmup):
                await call()
            times = []
            for _ in range(args.calls):
                t0 = time.perf_counter()
                await call()
                times.append(time.perf_counter() - t0)
            out[key] = times
    emit("result", latencies=out)


def _sdk() -> Any:
    import futu
    from futu.common.sys_config import SysConfig

    futu.set_futu_debug_model(False)
    SysConfig.set_all_thread_daemon(True)
    return futu


def _sdk_requests(args: argparse.Namespace) -> None:
    futu = _sdk()
    code = args.code
    ctx = futu.OpenQuoteContext(host="127.0.0.1", port=args.port)
    for codes, types in (
        (CODES_50, [futu.SubType.QUOTE]),
        ([code], [futu.SubType.ORDER_BOOK, futu.SubType.BROKER]),
    ):
        ret, msg = ctx.subscribe(codes, types, subscribe_push=False)
        if ret != futu.RET_OK:
            fail(f"subscribe failed: {msg}")

    def checked(result: Any) -> Any:
        if result[0] != futu.RET_OK:
            fail(f"SDK call failed: {result[1]}")
        return result

    calls: dict[str, Any] = {
        "quote:1": lambda: checked(ctx.get_stock_quote([code])),
        "quote:50": lambda: checked(ctx.get_stock_quote(CODES_50)),
        "book:10": lambda: checked(ctx.get_order_book(code, 10)),
        "broker": lambda: checked(ctx.get_broker_queue(code)),
    }
    out = {key: _time(call, args.calls, args.warmup) for key, call in calls.items()}
    emit("result", latencies=out)
    os._exit(0)


async def _books(args: argparse.Namespace) -> None:
    import anyio

    import aiofutu

    n = args.n
    usage = Usage()
    async with aiofutu.connect("127.0.0.1", args.port) as client:
        async with client.order_book_stream(
            args.code, conflate=False, buffer=args.buffer, overflow="block"
        ) as books:
            with anyio.fail_after(30):
                await books.__anext__()  # the first push: the current book
            usage.start()
            emit("ready")
            count = levels = 0
            t_first = t_last = 0.0
            with anyio.move_on_after(args.timeout) as scope:
                async for book in books:
                    if not count:
                        t_first = now()
                    count += 1
                    levels += len(book.bids)
                    if count >= n:
                        break
                t_last = now()
            if scope.cancelled_caught:
                fail(f"timed out: {count} of {n} books, {books.received} received")
            result = usage.stop()
    emit(
        "result",
        ticks=count,
        deliveries=count,
        levels=levels,
        t_first=t_first,
        t_last=t_last,
        **result,
    )


def _sdk_books(args: argparse.Namespace) -> None:
    futu = _sdk()
    n = args.n
    state = {"count": 0, "levels": 0, "errors": 0, "t_first": 0.0, "t_last": 0.0}
    done = threading.Event()

    class Handler(futu.OrderBookHandlerBase):  # type: ignore[misc,name-defined]
        def on_recv_rsp(self, rsp_pb: Any) -> Any:
            ret, data = super().on_recv_rsp(rsp_pb)
            if ret != futu.RET_OK:
                state["errors"] += 1
                return ret, data
            if not state["count"]:
                state["t_first"] = now()
            state["count"] += 1
            state["levels"] += len(data["Bid"])
            if state["count"] >= n:
                state["t_last"] = now()
                done.set()
            return ret, data

    ctx = futu.OpenQuoteContext(host="127.0.0.1", port=args.port)
    ctx.set_handler(Handler())
    ret, msg = ctx.subscribe(
        [args.code], [futu.SubType.ORDER_BOOK], is_first_push=False, subscribe_push=True
    )
    if ret != futu.RET_OK:
        fail(f"subscribe failed: {msg}")
    usage = Usage()
    usage.start()
    emit("ready")
    if not done.wait(args.timeout):
        fail(f"timed out: {state['count']} of {n} books after {args.timeout}s")
    result = usage.stop()
    emit("result", ticks=state["count"], deliveries=state["count"], **state, **result)
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=("requests", "sdk-requests", "books", "sdk-books"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--code", default="HK.00700")
    parser.add_argument("--n", type=int, default=20_000, help="books expected")
    parser.add_argument("--buffer", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    try:
        if args.mode in ("requests", "books"):
            import anyio

            anyio.run(_requests if args.mode == "requests" else _books, args)
        else:
            (_sdk_requests if args.mode == "sdk-requests" else _sdk_books)(args)
    except Exception as exc:
        fail(f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main()
