"""Public enums: SDK strings as values, protocol integers as ``.wire`` (protocol.md section 6)."""

from __future__ import annotations

from enum import Enum
from typing import Any, TypeVar, cast

import pytest

from aiofutu import (
    Market,
    ProtoId,
    PushDataType,
    RetType,
    Session,
    SubType,
    TickerDirection,
    TickerType,
)
from aiofutu._pb import common_pb2, qot_common_pb2
from aiofutu.enums import PUSH_PROTO_IDS

#: protocol.md section 6.6, in wire order 0..31 (note the SDK's REOPENINGP_RICED typo).
SDK_TICKER_TYPES = [
    "UNKNOWN",
    "AUTO_MATCH",
    "LATE",
    "NON_AUTO_MATCH",
    "INTER_AUTO_MATCH",
    "INTER_NON_AUTO_MATCH",
    "ODD_LOT",
    "AUCTION",
    "BULK",
    "CRASH",
    "CROSS_MARKET",
    "BULK_SOLD",
    "FREE_ON_BOARD",
    "RULE127_OR_155",
    "DELAY",
    "MARKET_CENTER_CLOSE_PRICE",
    "NEXT_DAY",
    "MARKET_CENTER_OPENING",
    "PRIOR_REFERENCE_PRICE",
    "MARKET_CENTER_OPEN_PRICE",
    "SELLER",
    "T",
    "EXTENDED_TRADING_HOURS",
    "CONTINGENT",
    "AVERAGE_PRICE",
    "OTC_SOLD",
    "ODD_LOT_CROSS_MARKET",
    "DERIVATIVELY_PRICED",
    "REOPENINGP_RICED",
    "CLOSING_PRICED",
    "COMPREHENSIVE_DELAY_PRICE",
    "OVERSEAS",
]

SDK_SUB_TYPES = {
    "N/A": 0,
    "QUOTE": 1,
    "ORDER_BOOK": 2,
    "TICKER": 4,
    "RT_DATA": 5,
    "K_DAY": 6,
    "K_5M": 7,
    "K_15M": 8,
    "K_30M": 9,
    "K_60M": 10,
    "K_1M": 11,
    "K_WEEK": 12,
    "K_MON": 13,
    "BROKER": 14,
    "K_QUARTER": 15,
    "K_YEAR": 16,
    "K_3M": 17,
    "K_10M": 18,
    "K_120M": 19,
    "K_180M": 20,
    "K_240M": 21,
    "ORDER_BOOK_ODD": 22,
}

E = TypeVar("E", bound=Enum)


def by_value(enum: type[E], value: str) -> E:
    """``enum(value)``: what pydantic and users do with an SDK string. (mypy reads the members'
    two-argument ``__new__`` as the call signature, hence the cast.)"""
    member: E = cast("Any", enum)(value)
    return member


UNKNOWN_WIRES = [-(2**31), -2, -1, 32, 99, 2**31 - 1]


# --------------------------------------------------------------------------- TickerDirection


def test_ticker_direction_strings_and_wire() -> None:
    assert [(m.value, m.wire) for m in TickerDirection] == [
        ("N/A", 0),
        ("BUY", 1),
        ("SELL", 2),
        ("NEUTRAL", 3),
    ]


@pytest.mark.parametrize(("wire", "text"), [(0, "N/A"), (1, "BUY"), (2, "SELL"), (3, "NEUTRAL")])
def test_ticker_direction_from_wire(wire: int, text: str) -> None:
    member = TickerDirection.from_wire(wire)
    assert member.value == text
    assert member.wire == wire


@pytest.mark.parametrize("wire", [-1, 4, 5, *UNKNOWN_WIRES])
def test_ticker_direction_unknown_is_na(wire: int) -> None:
    assert TickerDirection.from_wire(wire) is TickerDirection.NA


# --------------------------------------------------------------------------- TickerType


def test_ticker_type_has_all_32_sdk_strings_in_wire_order() -> None:
    assert len(SDK_TICKER_TYPES) == 32
    assert [TickerType.from_wire(i).value for i in range(32)] == SDK_TICKER_TYPES
    assert [TickerType.from_wire(i).wire for i in range(32)] == list(range(32))


def test_ticker_type_sdk_typo_is_kept() -> None:
    assert TickerType.REOPENING_PRICED.value == "REOPENINGP_RICED"
    assert TickerType.REOPENING_PRICED.wire == 28
    assert by_value(TickerType, "REOPENINGP_RICED") is TickerType.REOPENING_PRICED
    assert str(TickerType.REOPENING_PRICED) == "REOPENINGP_RICED"


def test_ticker_type_na_for_absent_or_unknown() -> None:
    assert TickerType.NA.value == "N/A"
    assert TickerType.NA.wire == -1
    assert len(TickerType) == 33


@pytest.mark.parametrize("wire", UNKNOWN_WIRES)
def test_ticker_type_unknown_wire_is_na(wire: int) -> None:
    assert TickerType.from_wire(wire) is TickerType.NA


def test_ticker_type_unknown_zero_is_not_na() -> None:
    # wire 0 is a real value ("UNKNOWN"); only absent/out-of-range fields are N/A
    assert TickerType.from_wire(0) is TickerType.UNKNOWN


# --------------------------------------------------------------------------- PushDataType


def test_push_data_type_strings() -> None:
    assert [(m.value, m.wire) for m in PushDataType] == [
        ("N/A", 0),
        ("REALTIME", 1),
        ("BYDISCONN", 2),
        ("CACHE", 3),
    ]
    assert [PushDataType.from_wire(i) for i in range(4)] == list(PushDataType)


@pytest.mark.parametrize("wire", [4, *UNKNOWN_WIRES])
def test_push_data_type_unknown_is_na(wire: int) -> None:
    assert PushDataType.from_wire(wire) is PushDataType.NA


# --------------------------------------------------------------------------- SubType, Market, ...


def test_sub_type_wire_numbers() -> None:
    assert {m.value: m.wire for m in SubType} == SDK_SUB_TYPES
    assert SubType.TICKER.wire == 4
    assert SubType.QUOTE.wire == 1
    assert SubType.K_DAY.wire == 6
    assert 3 not in {m.wire for m in SubType}


def test_sub_type_lookup_by_sdk_string() -> None:
    assert by_value(SubType, "TICKER") is SubType.TICKER
    assert by_value(SubType, "N/A") is SubType.NONE
    with pytest.raises(ValueError, match="TICK"):
        by_value(SubType, "TICK")


def test_market_prefixes() -> None:
    assert {m.value: m.wire for m in Market} == {
        "N/A": 0,
        "HK": 1,
        "HK_FUTURE": 2,
        "US": 11,
        "SH": 21,
        "SZ": 22,
        "SG": 31,
        "JP": 41,
        "AU": 51,
        "MY": 61,
        "CA": 71,
        "FX": 81,
        "CC": 91,
        "EC": 101,
    }


def test_session() -> None:
    assert {m.value: m.wire for m in Session} == {
        "N/A": 0,
        "RTH": 1,
        "ETH": 2,
        "ALL": 3,
        "OVERNIGHT": 4,
    }


def test_ret_type() -> None:
    assert {m.name: int(m) for m in RetType} == {
        "SUCCEED": 0,
        "FAILED": -1,
        "TIMEOUT": -100,
        "DISCONNECT": -200,
        "UNKNOWN": -400,
        "INVALID": -500,
    }


def test_proto_ids() -> None:
    assert int(ProtoId.INIT_CONNECT) == 1001
    assert int(ProtoId.GET_GLOBAL_STATE) == 1002
    assert int(ProtoId.NOTIFY) == 1003
    assert int(ProtoId.KEEP_ALIVE) == 1004
    assert int(ProtoId.QOT_SUB) == 3001
    assert int(ProtoId.QOT_REG_QOT_PUSH) == 3002
    assert int(ProtoId.QOT_GET_SUB_INFO) == 3003
    assert int(ProtoId.QOT_GET_TICKER) == 3010
    assert int(ProtoId.QOT_UPDATE_TICKER) == 3011


def test_push_proto_ids_match_the_sdk_list() -> None:
    assert (
        frozenset(
            {
                1003,
                2208,
                2218,
                3005,
                3007,
                3009,
                3011,
                3013,
                3015,
                3019,
                3261,
                3310,
                3450,
                3451,
                3452,
            }
        )
        == PUSH_PROTO_IDS
    )
    assert ProtoId.QOT_GET_TICKER not in PUSH_PROTO_IDS
    assert all(p in {int(x) for x in ProtoId} for p in PUSH_PROTO_IDS)


# --------------------------------------------------------------------------- str behaviour


def test_members_behave_as_sdk_strings() -> None:
    assert TickerDirection.BUY == "BUY"
    assert isinstance(TickerDirection.BUY, str)
    assert str(TickerDirection.SELL) == "SELL"
    assert f"{TickerDirection.NEUTRAL}" == "NEUTRAL"
    assert f"{TickerType.AUTO_MATCH}" == "AUTO_MATCH"
    assert str(TickerType.NA) == "N/A"
    assert by_value(TickerDirection, "BUY") is TickerDirection.BUY


# --------------------------------------------------------------------------- agree with _pb enums


def _pb_numbers(enum_descriptor: object) -> set[int]:
    return {v.number for v in enum_descriptor.values}  # type: ignore[attr-defined]


def test_wire_values_match_generated_protobuf_enums() -> None:
    q = qot_common_pb2.DESCRIPTOR.enum_types_by_name
    c = common_pb2.DESCRIPTOR.enum_types_by_name
    assert _pb_numbers(q["TickerType"]) == {m.wire for m in TickerType if m is not TickerType.NA}
    assert _pb_numbers(q["TickerDirection"]) == {m.wire for m in TickerDirection}
    assert _pb_numbers(q["PushDataType"]) == {m.wire for m in PushDataType}
    assert _pb_numbers(q["SubType"]) == {m.wire for m in SubType}
    assert _pb_numbers(q["QotMarket"]) == {m.wire for m in Market}
    assert _pb_numbers(c["Session"]) == {m.wire for m in Session}
    assert _pb_numbers(c["RetType"]) == {int(m) for m in RetType}


def test_named_pb_values() -> None:
    assert qot_common_pb2.TickerType_ReOpeningPriced == TickerType.REOPENING_PRICED.wire
    assert qot_common_pb2.TickerType_Overseas == TickerType.OVERSEAS.wire
    assert qot_common_pb2.SubType_Ticker == SubType.TICKER.wire
    assert qot_common_pb2.TickerDirection_Bid == TickerDirection.BUY.wire
    assert qot_common_pb2.TickerDirection_Ask == TickerDirection.SELL.wire
    assert qot_common_pb2.PushDataType_ByDisConn == PushDataType.BYDISCONN.wire
    assert qot_common_pb2.QotMarket_EventContract == Market.EC.wire
