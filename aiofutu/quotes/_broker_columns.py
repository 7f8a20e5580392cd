"""Broker queues decoded through a columnar view (``protos/broker_columns.proto``).

The exact schema gives one wrapper object per broker, five attribute reads and two presence
checks on it: most of the cost of a queue (about 2 us per broker, 40 to 80 brokers a queue).
The view parses each side into columns; the entries are built from them, and an entry that
did not change since the last queue (most of them, from one push to the next) is the same
frozen model. It is used only when the view loses nothing: every column of a side has one
value per broker, or none for the optional ``orderID`` and ``volume`` (HK SF). Otherwise the
queue is decoded exactly (:func:`~aiofutu.quotes.broker.broker_queue_from_s2c`): same model
either way.
"""

from __future__ import annotations

from itertools import repeat
from typing import Any

from .._pb import broker_columns_pb2, qot_get_broker_pb2, qot_update_broker_pb2
from .._protocol import decode_response, successful_view
from ..codes import format_code
from ..models import _new, _set_dict
from .broker import BrokerEntry, BrokerQueue, broker_queue_from_s2c

__all__ = ("BrokerView", "broker_from_reply", "broker_from_view")

#: the view's Response (parse a 3014 reply or a 3015 push body with it)
BrokerView = broker_columns_pb2.Response
_Entry = BrokerEntry
_Queue = BrokerQueue

_Key = tuple[int, str, int, "int | None", "int | None"]
#: entries already built, by (id, name, position, order id, volume): shared by every queue
_ENTRIES: dict[_Key, BrokerEntry] = {}
_ENTRIES_MAX = 8192


def _entry(key: _Key) -> BrokerEntry:
    if len(_ENTRIES) >= _ENTRIES_MAX:
        _ENTRIES.clear()
    entry = _ENTRIES[key] = _new(_Entry)
    broker_id, name, position, order_id, volume = key
    _set_dict(
        entry,
        {
            "broker_id": broker_id,
            "name": name,
            "position": position,
            "order_id": order_id,
            "volume": volume,
        },
    )
    return entry


def _side(cols: Any) -> tuple[BrokerEntry, ...] | None:
    """The entries of one side, or ``None`` when the view cannot represent them exactly."""
    # slicing copies a column to a list in one call (iterating the container is ~3x slower)
    ids = cols.id[:]
    names = cols.name[:]
    positions = cols.pos[:]
    order_ids = cols.orderID[:]
    volumes = cols.volume[:]
    n = len(ids)
    if (
        len(names) != n
        or len(positions) != n
        or (order_ids and len(order_ids) != n)
        or (volumes and len(volumes) != n)
    ):
        return None
    get = _ENTRIES.get
    out: list[BrokerEntry] = []
    append = out.append
    for key in zip(
        ids,
        names,
        positions,
        order_ids if order_ids else repeat(None, n),
        volumes if volumes else repeat(None, n),
        strict=True,
    ):
        entry = get(key)
        append(entry if entry is not None else _entry(key))
    return tuple(out)


def _exact(body: bytes) -> BrokerQueue:
    response = qot_update_broker_pb2.Response()
    response.ParseFromString(body)
    return broker_queue_from_s2c(response.s2c)


def broker_from_view(item: tuple[Any, bytes]) -> BrokerQueue:
    """The model of ``(view S2C, body)``: from the view's columns, or the body decoded exactly."""
    s2c, body = item
    bids = _side(s2c.brokerBidList)
    asks = _side(s2c.brokerAskList) if bids is not None else None
    if bids is None or asks is None:
        return _exact(body)
    sec = s2c.security
    queue = _new(_Queue)
    _set_dict(
        queue,
        {
            "code": format_code(sec.market, sec.code),
            "name": s2c.name if s2c.HasField("name") else "N/A",
            "bids": bids,
            "asks": asks,
        },
    )
    return queue


def broker_from_reply(body: bytes, proto_id: int, serial: int) -> BrokerQueue:
    """The model of a 3014 reply (its S2C is a 3015 push's), through the view when it loses
    nothing; a refusal or a body that does not parse goes the exact way, for its typed error."""
    view = successful_view(BrokerView, body)
    if view is None:
        return broker_queue_from_s2c(
            decode_response(qot_get_broker_pb2.Response, body, proto_id, serial).s2c
        )
    return broker_from_view((view.s2c, body))
