"""The official SDK (futu-api) as a peer of the simulator's state kinds; run only as a subprocess.

``python sdk_state_peer.py '{"port": 11111, "code": "HK.00700", "us": "US.AAPL",
"quote_price": 512.5, "book_price": 498.2, "broker_id": 4321}'`` subscribes QUOTE, ORDER_BOOK
and BROKER with the SDK's ``StockQuoteHandlerBase``, ``OrderBookHandlerBase`` and
``BrokerHandlerBase`` set, calls ``get_stock_quote``, ``get_order_book`` and
``get_broker_queue``, and reports each result as one JSON line on stdout. After the ``ready``
line the test sets a quote, a book and a broker queue in the simulator; the peer waits until its
handlers saw them and reads them back with the get calls. Then (``ticked``) the test makes ticks,
and the peer waits for the handlers' tape-derived states. Importing ``futu`` writes under $HOME
and takes over SIGINT, which is why this never runs inside pytest's process.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any


def emit(step: str, **data: Any) -> None:
    print(json.dumps({"step": step, **data}, default=str), flush=True)


def frame(df: Any) -> Any:
    """A pandas frame as plain JSON (column order and values), or the error message."""
    if isinstance(df, str):
        return df
    return {"columns": list(df.columns), "rows": df.to_dict("records")}


def book(data: Any) -> Any:
    """The SDK's order-book dict as JSON (detail dicts' keys become strings)."""
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for side in ("Bid", "Ask"):
        out[side] = [[p, v, n, {str(k): d for k, d in det.items()}] for p, v, n, det in data[side]]
    return out


class Seen:
    """What a handler got, and a wait for the first item matching a test."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.errors: list[str] = []
        self.cond = threading.Condition()

    def add(self, item: Any) -> None:
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def wait(self, test: Any, timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for item in self.items:
                    if test(item):
                        return item
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)


def main() -> None:
    cfg = json.loads(sys.argv[1])
    import futu

    futu.set_futu_debug_model(False)
    from futu import (
        RET_OK,
        BrokerHandlerBase,
        OpenQuoteContext,
        OrderBookHandlerBase,
        StockQuoteHandlerBase,
        SubType,
    )

    code, us = cfg["code"], cfg["us"]
    quotes, books, brokers = Seen(), Seen(), Seen()

    class Quotes(StockQuoteHandlerBase):  # type: ignore[misc]
        def on_recv_rsp(self, rsp_pb: Any) -> Any:
            ret, data = super().on_recv_rsp(rsp_pb)
            if ret != RET_OK:
                quotes.errors.append(str(data))
            else:
                quotes.add(frame(data))
            return ret, data

    class Books(OrderBookHandlerBase):  # type: ignore[misc]
        def on_recv_rsp(self, rsp_pb: Any) -> Any:
            ret, data = super().on_recv_rsp(rsp_pb)
            if ret != RET_OK:
                books.errors.append(str(data))
            else:
                books.add(book(data))
            return ret, data

    class Brokers(BrokerHandlerBase):  # type: ignore[misc]
        def on_recv_rsp(self, rsp_pb: Any) -> Any:
            ret, stock, data = super().on_recv_rsp(rsp_pb)
            if ret != RET_OK:
                brokers.errors.append(str(data))
            else:
                brokers.add({"code": stock, "bid": frame(data[0]), "ask": frame(data[1])})
            return ret, stock, data

    def gets(step: str) -> None:
        ret, data = ctx.get_stock_quote([code])
        emit(f"{step}_quote", ret=ret, frame=frame(data))
        ret, data = ctx.get_order_book(code, num=10)
        emit(f"{step}_book", ret=ret, book=book(data))
        ret, bid, ask = ctx.get_broker_queue(code)
        emit(f"{step}_broker", ret=ret, bid=frame(bid), ask=frame(ask))

    ctx = OpenQuoteContext(host="127.0.0.1", port=cfg["port"])
    try:
        for handler in (Quotes(), Books(), Brokers()):
            ctx.set_handler(handler)
        ret, data = ctx.get_stock_quote([code])
        emit("unsubscribed_quote", ret=ret, msg=data if ret != RET_OK else None)
        ret, data = ctx.get_order_book(code)
        emit("unsubscribed_book", ret=ret, msg=data if ret != RET_OK else None)
        ret, msg = ctx.subscribe([code], [SubType.QUOTE, SubType.ORDER_BOOK, SubType.BROKER])
        emit("subscribe", ret=ret, msg=msg)
        ret, msg = ctx.subscribe([us], [SubType.BROKER])
        emit("subscribe_us_broker", ret=ret, msg=msg)
        ret, msg = ctx.subscribe([us], [SubType.ORDER_BOOK])
        emit("subscribe_us_book", ret=ret, msg=msg)
        ret, bid, _ask = ctx.get_broker_queue(us)
        emit("us_broker", ret=ret, msg=bid if ret != RET_OK else None)
        ok = all(s.wait(lambda _: True) is not None for s in (quotes, books, brokers))
        emit(
            "first_pushes",
            ok=ok,
            quote=quotes.items[:1],
            book=books.items[:1],
            broker=brokers.items[:1],
        )
        gets("first")
        ret, data = ctx.get_order_book(code, num=100)  # sent as is: the simulator clamps
        emit("book_100", ret=ret, levels=len(data["Bid"]) if ret == RET_OK else data)
        ret, data = ctx.get_order_book(us, num=60)
        emit("us_book_60", ret=ret, levels=len(data["Ask"]) if ret == RET_OK else data)
        ret, data = ctx.get_order_book(code, num=0)
        emit("book_0", ret=ret, msg=data if ret != RET_OK else None)
        emit("ready")
        q = quotes.wait(lambda f: f["rows"][0]["last_price"] == cfg["quote_price"])
        b = books.wait(lambda d: d["Bid"] and d["Bid"][0][0] == cfg["book_price"])
        r = brokers.wait(
            lambda d: d["bid"]["rows"] and d["bid"]["rows"][0]["bid_broker_id"] == cfg["broker_id"]
        )
        emit("set_pushes", quote=q, book=b, broker=r)
        gets("set")
        emit("tick")
        line = sys.stdin.readline()  # the test made ticks
        target = json.loads(line)["last_price"]
        q = quotes.wait(lambda f: f["rows"][0]["last_price"] == target)
        b = books.wait(lambda d: target in (d["Bid"][0][0], d["Ask"][0][0]))
        emit("tick_pushes", quote=q, book=b, errors=quotes.errors + books.errors + brokers.errors)
        gets("tick")
    finally:
        ctx.close()
    emit("done")


if __name__ == "__main__":
    main()
