"""The pydantic ``Ticker`` model and its construction from ``Qot_Common.Ticker`` messages."""

from __future__ import annotations

import copy
import datetime as dt
import json
import pickle
from typing import Any

import pytest
from pydantic import ValidationError

from aiofutu import PushDataType, Ticker, TickerDirection, TickerType
from aiofutu._pb import qot_common_pb2, qot_get_ticker_pb2, qot_update_ticker_pb2
from aiofutu.models import tickers_from_pb

SEQ = 6971624110669434300  # a real HK sequence (protocol.md section 11)


def full_pb() -> qot_common_pb2.Ticker:
    t = qot_common_pb2.Ticker()
    t.time = "2021-06-09 11:02:09.500"
    t.sequence = SEQ
    t.dir = 2
    t.price = 598.5
    t.volume = 300
    t.turnover = 179550.0
    t.recvTime = 1623207729.61
    t.type = 28
    t.typeSign = 85
    t.pushDataType = 2
    t.timestamp = 1623207729.5
    t.hpVolume = 300.25
    return t


def minimal_pb(sequence: int = 1, dir_: int = 1) -> qot_common_pb2.Ticker:
    """Only the required fields."""
    t = qot_common_pb2.Ticker()
    t.time = "2025-04-07 05:50:23.745"
    t.sequence = sequence
    t.dir = dir_
    t.price = 188.38
    t.volume = 7
    t.turnover = 1318.66
    return t


def one(market: int, code: str, name: str, pb: qot_common_pb2.Ticker) -> Ticker:
    (model,) = tickers_from_pb(market, code, name, [pb])
    return model


def user_kwargs(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "code": "US.AAPL",
        "name": "Apple",
        "sequence": 7490506385373790208,
        "time": "2025-04-07 05:50:23",
        "price": 188.38,
        "volume": 100,
        "turnover": 18838.0,
        "ticker_direction": "BUY",
        "type": "AUTO_MATCH",
    }
    base.update(overrides)
    return base


# --------------------------------------------------------------------------- tickers_from_pb


def test_every_field_is_mapped() -> None:
    m = one(1, "00700", "TENCENT", full_pb())
    assert m.code == "HK.00700"
    assert m.name == "TENCENT"
    assert m.time == "2021-06-09 11:02:09.500"
    assert m.sequence == SEQ
    assert m.ticker_direction is TickerDirection.SELL
    assert m.price == 598.5
    assert m.volume == 300
    assert m.turnover == 179550.0
    assert m.recv_time == 1623207729.61
    assert m.type is TickerType.REOPENING_PRICED
    assert m.type_sign == 85
    assert m.push_data_type is PushDataType.BYDISCONN
    assert m.timestamp == 1623207729.5
    assert m.hp_volume == 300.25
    assert set(m.model_dump()) == set(Ticker.model_fields)


def test_field_types() -> None:
    m = one(1, "00700", "TENCENT", full_pb())
    assert type(m.sequence) is int
    assert type(m.volume) is int
    assert type(m.price) is float
    assert type(m.turnover) is float
    assert type(m.timestamp) is float
    assert type(m.hp_volume) is float


def test_optional_fields_absent() -> None:
    m = one(11, "AAPL", "Apple", minimal_pb())
    assert m.code == "US.AAPL"
    assert m.type is TickerType.NA  # absent type -> N/A, not UNKNOWN
    assert m.hp_volume is None
    assert m.push_data_type is PushDataType.NA
    assert m.timestamp == 0.0
    assert m.recv_time == 0.0
    assert m.type_sign == 0


def test_type_zero_is_unknown_not_na() -> None:
    pb = minimal_pb()
    pb.type = 0
    assert one(1, "00700", "", pb).type is TickerType.UNKNOWN


def test_hp_volume_zero_is_kept() -> None:
    pb = minimal_pb()
    pb.hpVolume = 0.0
    assert one(1, "00700", "", pb).hp_volume == 0.0


@pytest.mark.parametrize(
    ("dir_", "direction"),
    [
        (0, TickerDirection.NA),
        (1, TickerDirection.BUY),
        (2, TickerDirection.SELL),
        (3, TickerDirection.NEUTRAL),
        (4, TickerDirection.NA),
        (-7, TickerDirection.NA),
    ],
)
def test_direction_mapping(dir_: int, direction: TickerDirection) -> None:
    assert one(1, "00700", "", minimal_pb(dir_=dir_)).ticker_direction is direction


@pytest.mark.parametrize("wire", [32, 99, -5])
def test_unknown_type_and_push_type_are_na(wire: int) -> None:
    pb = minimal_pb()
    pb.type = wire
    pb.pushDataType = wire
    m = one(1, "00700", "", pb)
    assert m.type is TickerType.NA
    assert m.push_data_type is PushDataType.NA


def test_unknown_market_renders_na() -> None:
    assert one(999, "X1", "", minimal_pb()).code == "N/A.X1"


def test_many_ticks_keep_order() -> None:
    pbs = [minimal_pb(sequence=i) for i in range(5)]
    models = tickers_from_pb(21, "600000", "PF Bank", pbs)
    assert [m.sequence for m in models] == [0, 1, 2, 3, 4]
    assert {m.code for m in models} == {"SH.600000"}
    assert tickers_from_pb(1, "00700", "", []) == []


def test_from_repeated_field_of_a_parsed_response() -> None:
    rsp = qot_get_ticker_pb2.Response(retType=0)
    rsp.s2c.security.market = 1
    rsp.s2c.security.code = "00700"
    rsp.s2c.name = "TENCENT"
    rsp.s2c.tickerList.append(full_pb())
    rsp.s2c.tickerList.append(minimal_pb(sequence=SEQ + 1))
    parsed = qot_get_ticker_pb2.Response.FromString(rsp.SerializeToString())
    s2c = parsed.s2c
    models = tickers_from_pb(s2c.security.market, s2c.security.code, s2c.name, s2c.tickerList)
    assert [m.sequence for m in models] == [SEQ, SEQ + 1]
    assert models[0].hp_volume == 300.25
    assert models[1].hp_volume is None
    assert models[1].type is TickerType.NA

    push = qot_update_ticker_pb2.Response.FromString(rsp.SerializeToString())  # same numbers
    assert tickers_from_pb(1, "00700", "TENCENT", push.s2c.tickerList) == models


# --------------------------------------------------------------------------- datetime


def test_datetime_is_utc_aware() -> None:
    m = one(1, "00700", "", full_pb())
    when = m.datetime
    assert when.tzinfo is not None
    assert when.utcoffset() == dt.timedelta(0)
    assert when == dt.datetime(2021, 6, 9, 3, 2, 9, 500000, tzinfo=dt.timezone.utc)
    assert when.timestamp() == 1623207729.5


def test_datetime_default_is_epoch() -> None:
    assert one(1, "00700", "", minimal_pb()).datetime == dt.datetime(
        1970, 1, 1, tzinfo=dt.timezone.utc
    )


# --------------------------------------------------------------------------- model semantics


def test_frozen() -> None:
    m = one(1, "00700", "", full_pb())
    with pytest.raises(ValidationError):
        m.price = 1.0
    with pytest.raises(ValidationError):
        m.code = "HK.00005"
    assert m.price == 598.5
    user = Ticker(**user_kwargs())
    with pytest.raises(ValidationError):
        user.volume = 0


def test_equal_to_validated_copy() -> None:
    for pb in (full_pb(), minimal_pb()):
        m = one(1, "00700", "TENCENT", pb)
        validated = Ticker.model_validate(m.model_dump())
        assert validated == m
        assert m == validated
        assert hash(validated) == hash(m)


def test_hashable_and_deduplicates() -> None:
    a = one(1, "00700", "", full_pb())
    b = one(1, "00700", "", full_pb())
    c = one(1, "00700", "", minimal_pb())
    assert a is not b
    assert a == b
    assert a != c
    assert len({a, b, c}) == 2
    assert {a: 1}[b] == 1


def test_not_equal_when_a_field_differs() -> None:
    m = one(1, "00700", "", full_pb())
    assert m != m.model_copy(update={"price": 1.0})
    assert m != Ticker.model_validate({**m.model_dump(), "hp_volume": None})


def test_model_dump_values() -> None:
    m = one(1, "00700", "TENCENT", full_pb())
    dumped = m.model_dump()
    assert dumped["ticker_direction"] is TickerDirection.SELL
    assert dumped["type"] is TickerType.REOPENING_PRICED
    as_json = m.model_dump(mode="json")
    assert as_json["ticker_direction"] == "SELL"
    assert as_json["type"] == "REOPENINGP_RICED"
    assert as_json["push_data_type"] == "BYDISCONN"


def test_json_round_trip() -> None:
    for pb in (full_pb(), minimal_pb()):
        m = one(1, "00700", "TENCENT", pb)
        text = m.model_dump_json()
        payload = json.loads(text)
        assert payload["sequence"] == pb.sequence  # exact 64-bit integer, not a float
        back = Ticker.model_validate_json(text)
        assert back == m
        assert back.type is m.type
        assert back.hp_volume == m.hp_volume


def test_pickle_and_deepcopy() -> None:
    m = one(1, "00700", "TENCENT", full_pb())
    assert pickle.loads(pickle.dumps(m)) == m
    assert copy.deepcopy(m) == m


def test_fields_set_covers_all_fields() -> None:
    m = one(1, "00700", "", minimal_pb())
    assert m.model_fields_set == set(Ticker.model_fields)
    # exclude_unset must not drop anything from a model built from OpenD data
    assert m.model_dump(exclude_unset=True) == m.model_dump()


# --------------------------------------------------------------------------- user construction


def test_user_construction_coerces_sdk_strings() -> None:
    t = Ticker(**user_kwargs(type="REOPENINGP_RICED", push_data_type="CACHE"))
    assert t.ticker_direction is TickerDirection.BUY
    assert t.type is TickerType.REOPENING_PRICED
    assert t.push_data_type is PushDataType.CACHE
    assert t.hp_volume is None
    assert t.timestamp == 0.0


@pytest.mark.parametrize(
    "overrides",
    [
        {"ticker_direction": "UP"},
        {"type": "AUTOMATCH"},
        {"push_data_type": "LIVE"},
        {"price": "not a number"},
        {"volume": "lots"},
        {"volume": 1.5},
        {"sequence": None},
        {"code": None},
        {"unexpected_field": 1},
    ],
)
def test_user_construction_rejects_bad_values(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Ticker(**user_kwargs(**overrides))


def test_user_construction_requires_fields() -> None:
    kwargs = user_kwargs()
    del kwargs["price"]
    with pytest.raises(ValidationError, match="price"):
        Ticker(**kwargs)
