"""The restructure's invariants: one table of kinds, a hub for many routers, a subscription book
that plans restores, and modules small enough to read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aiofutu import _kinds, _protocol
from aiofutu._codec import Frame
from aiofutu._pb import qot_get_ticker_pb2
from aiofutu._routing import KindRouter, PushHub, Sink
from aiofutu.enums import PUSH_PROTO_IDS, ProtoId, SubType
from aiofutu.frames import TICKER_COLUMNS
from aiofutu.quotes._ticker_router import TickerRouter
from aiofutu.sim._handlers import HANDLERS
from aiofutu.subscriptions import MAX_CODES_PER_SUB, SubscriptionBook

PACKAGE = Path(__file__).resolve().parents[2] / "aiofutu"


def test_no_module_over_600_lines() -> None:
    sizes = {
        str(p.relative_to(PACKAGE)): len(p.read_text(encoding="utf-8").splitlines())
        for p in PACKAGE.rglob("*.py")
        if "_pb" not in p.parts
    }
    assert {name: n for name, n in sizes.items() if n > 600} == {}


def test_push_ids_are_derived_from_the_protocol_names() -> None:
    # the literal list they replace
    assert PUSH_PROTO_IDS == {
        1003, 2208, 2218, 3005, 3007, 3009, 3011, 3013, 3015, 3019, 3261, 3310, 3450, 3451, 3452
    }  # fmt: skip


def test_tables_are_derived_from_the_kinds() -> None:
    ticker = _kinds.KINDS_BY_NAME["ticker"]
    assert [k.name for k in _kinds.KINDS] == [
        "ticker",
        "kline",
        "rt",
        "quote",
        "order_book",
        "broker",
    ]
    assert _kinds.KINDS_BY_SUB_TYPE[SubType.TICKER] is ticker
    book = _kinds.KINDS_BY_NAME["order_book"]
    assert _kinds.KINDS_BY_SUB_TYPE[SubType.ORDER_BOOK_ODD] is book
    for state in ("quote", "order_book", "broker"):
        kind = _kinds.KINDS_BY_NAME[state]
        assert (kind.shape, kind.restore) == ("state", "first_push")
    kline = _kinds.KINDS_BY_NAME["kline"]
    assert len(kline.sub_types) == 15 and kline.shape == "series"
    assert all(_kinds.KINDS_BY_SUB_TYPE[t] is kline for t in kline.sub_types)
    assert _kinds.KINDS_BY_SUB_TYPE[SubType.RT_DATA] is _kinds.KINDS_BY_NAME["rt"]
    assert ticker.push_proto_id in PUSH_PROTO_IDS
    for kind in _kinds.KINDS:
        assert _protocol.RESPONSE_TYPES[kind.get_proto_id] is kind.get_response
        assert _protocol.RESPONSE_TYPES[kind.push_proto_id] is kind.push_response
        assert HANDLERS[kind.get_proto_id][0] is kind.get_request
        router = kind.new_router()
        assert isinstance(router, KindRouter)
        assert router.push_proto_id == kind.push_proto_id
    assert _protocol.RESPONSE_TYPES[ProtoId.QOT_GET_TICKER] is qot_get_ticker_pb2.Response
    assert ticker.columns == TICKER_COLUMNS


class _Router(KindRouter):
    """A kind that stages one model per push: enough to see the hub's flushing."""

    def __init__(self, proto_id: int) -> None:
        super().__init__()
        self.push_proto_id = proto_id
        self.flushes = 0

    def dispatch_batch(self, frames: list[Frame]) -> None:
        for frame in frames:
            route = self._routes[(1, "00700")]
            if route.held is not None:
                route.held.append(frame.body)
            else:
                self._deliver(route, frame.body)

    def _deliver(self, route: Any, data: Any) -> None:
        for sink in route.model_sinks:
            if not sink.staged:
                self._dirty_sinks.append(sink)
            sink.staged.append(data)

    def flush(self) -> Any:
        self.flushes += 1
        return super().flush()


class _Sink(Sink):
    wants_models = True
    overflow = "raise"

    def __init__(self) -> None:
        self.codes = ("HK.00700",)
        self.staged = []
        self.got: list[Any] = []

    def _put_models(self, items: list[Any]) -> None:
        self.got.extend(items)

    def _is_full(self) -> bool:
        return False


def test_hub_flushes_only_the_routers_of_the_chunk() -> None:
    a, b = _Router(3013), _Router(3015)
    hub = PushHub()
    hub.add(a)
    hub.add(b)
    sa, sb = _Sink(), _Sink()
    a.attach(sa)
    b.attach(sb)
    assert hub.handlers == {3013: a.dispatch_batch, 3015: b.dispatch_batch}
    hub.handlers[3013]([Frame(3013, 0, b"x"), Frame(3013, 0, b"y")])
    assert hub.after_chunk({3013: []}) is None
    assert (a.flushes, b.flushes) == (1, 0)
    assert sa.got == [b"x", b"y"] and sb.got == []
    hub.hold()
    hub.handlers[3015]([Frame(3015, 0, b"z")])
    hub.after_chunk({3015: []})
    assert sb.got == []  # held while reconnecting
    hub.release()
    assert sb.got == [b"z"]


def test_hub_routes_the_ticker_router_without_a_hop() -> None:
    router = TickerRouter()
    hub = PushHub()
    hub.add(router)
    assert hub.handlers[ProtoId.QOT_UPDATE_TICKER] == router.dispatch_batch


def test_book_keeps_one_record_per_code_and_sub_type() -> None:
    book = SubscriptionBook()
    book.confirmed(["HK.00700"], [SubType.TICKER], push=True, first_push=True)
    first = book.get("HK.00700", SubType.TICKER)
    assert first is not None and first.push and first.first_push
    book.confirmed(["HK.00700"], [SubType.TICKER, SubType.QUOTE], push=False, extended_time=True)
    again = book.get("HK.00700", SubType.TICKER)
    assert again is not None
    assert again.push, "push stays registered until unsubscribed"
    assert again.extended_time and again.since == first.since
    assert book.by_code() == {"HK.00700": frozenset({SubType.TICKER, SubType.QUOTE})}
    assert book.without_push(["HK.00700", "US.AAPL"], SubType.TICKER) == ["US.AAPL"]
    assert book.without_push(["HK.00700"], SubType.QUOTE) == ["HK.00700"]
    book.forget(["HK.00700"], [SubType.TICKER])
    assert not book.has("HK.00700", SubType.TICKER) and book.has("HK.00700", SubType.QUOTE)
    book.clear()
    assert len(book) == 0


@pytest.mark.parametrize("n", [1, 100, 101, 250])
def test_book_plans_restore_in_batches_of_at_most_100(n: int) -> None:
    book = SubscriptionBook()
    codes = [f"HK.{i:05d}" for i in range(n)]
    book.confirmed(codes, [SubType.TICKER], push=True)
    book.confirmed(["US.AAPL"], [SubType.TICKER], push=True, session=3)
    book.confirmed(["US.TSLA"], [SubType.TICKER], push=False)
    plan = book.restore_plan()
    assert all(len(b.codes) <= MAX_CODES_PER_SUB for b in plan)
    plain = [c for b in plan if b.push and b.session == 0 for c in b.codes]
    assert plain == codes
    assert [(b.codes, b.session) for b in plan if b.session == 3] == [(["US.AAPL"], 3)]
    assert [b.codes for b in plan if not b.push] == [["US.TSLA"]]
    assert len(plan) == -(-n // MAX_CODES_PER_SUB) + 2


def test_connection_flushes_only_the_routers_of_each_chunk() -> None:
    from aiofutu._codec import encode_frame
    from aiofutu._connection import Connection

    a, b = _Router(3013), _Router(3015)
    hub = PushHub()
    hub.add(a)
    hub.add(b)
    sa, sb = _Sink(), _Sink()
    a.attach(sa)
    b.attach(sb)
    conn = Connection(request_timeout=1.0, pushes=hub)
    conn._on_data(encode_frame(3013, 0, b"x") + encode_frame(3013, 0, b"y"))
    assert (a.flushes, b.flushes) == (1, 0) and sa.got == [b"x", b"y"]
    conn._on_data(encode_frame(3015, 0, b"z") + encode_frame(3013, 0, b"w"))
    assert (a.flushes, b.flushes) == (2, 1) and sa.got[-1] == b"w" and sb.got == [b"z"]
    conn._on_data(encode_frame(1004, 7, b""))  # a reply nobody waits for: no flush at all
    assert (a.flushes, b.flushes) == (2, 1)
