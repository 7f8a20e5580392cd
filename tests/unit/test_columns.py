"""Columnar decoding (``aiofutu._columns``) agrees with the exact schema, or declines.

The fast path parses replies with a view schema and must give exactly what field-by-field
reading gives; wherever the view would be ambiguous it must return ``None`` so that the exact
decoder runs. Hypothesis generates the messages; the official SDK's own generated classes
serialize some of them, so another code generator's bytes go through the same checks.
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiofutu import _columns
from aiofutu._columns import TickColumns, decode, from_pb, security_key
from aiofutu._pb import qot_common_pb2, qot_get_ticker_pb2, qot_update_ticker_pb2
from aiofutu.models import tickers_from_columns, tickers_from_pb

OPTIONAL = ("recvTime", "type", "typeSign", "pushDataType", "timestamp", "hpVolume")
_I64 = st.integers(-(2**63), 2**63 - 1)
_FLOAT = st.floats(allow_nan=False)
_VALUES = {
    "recvTime": _FLOAT,
    "type": st.integers(-3, 40),
    "typeSign": st.integers(-(2**31), 2**31 - 1),
    "pushDataType": st.integers(-2, 6),
    "timestamp": _FLOAT,
    "hpVolume": _FLOAT,
}


@st.composite
def tick(draw: st.DrawFn, present: frozenset[str] | None = None) -> qot_common_pb2.Ticker:
    """A tick with random required fields and the optional fields in ``present`` (or random)."""
    t = qot_common_pb2.Ticker(
        time=draw(st.text(max_size=30)),
        sequence=draw(_I64),
        dir=draw(st.integers(-5, 8)),
        price=draw(_FLOAT),
        volume=draw(_I64),
        turnover=draw(_FLOAT),
    )
    for field in OPTIONAL:
        if (field in present) if present is not None else draw(st.booleans()):
            setattr(t, field, draw(_VALUES[field]))
    return t


def reply(
    ticks: list[qot_common_pb2.Ticker],
    *,
    market: int = 1,
    code: str = "00700",
    name: str | None = "TENCENT",
    module: Any = qot_update_ticker_pb2,
) -> bytes:
    resp = module.Response(retType=0)
    resp.s2c.security.market = market
    resp.s2c.security.code = code
    if name is not None:
        resp.s2c.name = name
    resp.s2c.tickerList.extend(ticks)
    return bytes(resp.SerializeToString())


def exact(bodies: list[bytes]) -> TickColumns:
    """What the exact schema says, message by message, merged."""
    out: TickColumns | None = None
    for body in bodies:
        resp = qot_update_ticker_pb2.Response.FromString(body)
        s2c = resp.s2c
        cols = from_pb(s2c.security.market, s2c.security.code, s2c.name, s2c.tickerList)
        if out is None:
            out = cols
        else:
            out.extend(cols)
    assert out is not None
    return out


@st.composite
def regular_batches(draw: st.DrawFn) -> list[list[qot_common_pb2.Ticker]]:
    """1..5 messages whose ticks all carry the same optional fields (the fast path's case)."""
    present = frozenset(draw(st.sets(st.sampled_from(OPTIONAL))))
    return draw(st.lists(st.lists(tick(present), max_size=5), min_size=1, max_size=5))


# -------------------------------------------------------------------------------- agreement


@given(regular_batches(), st.sampled_from(["TENCENT", "", None]))
@settings(max_examples=300)
def test_columns_of_regular_replies_equal_the_exact_decoding(
    batches: list[list[qot_common_pb2.Ticker]], name: str | None
) -> None:
    bodies = [reply(ticks, name=name) for ticks in batches]
    cols = decode(b"".join(bodies), len(bodies))
    assert cols is not None, "a regular batch must take the fast path"
    assert cols == exact(bodies)
    assert cols.n == sum(map(len, batches))
    assert cols.name == (name or "N/A")


@given(st.lists(st.lists(tick(), max_size=4), min_size=1, max_size=4))
@settings(max_examples=300)
def test_columns_never_disagree_with_the_exact_decoding(
    batches: list[list[qot_common_pb2.Ticker]],
) -> None:
    """Optional fields present on some ticks only: decline, or agree exactly."""
    bodies = [reply(ticks) for ticks in batches]
    cols = decode(b"".join(bodies), len(bodies))
    if cols is not None:
        assert cols == exact(bodies)


@given(regular_batches())
def test_models_from_decoded_columns_equal_models_from_the_exact_schema(
    batches: list[list[qot_common_pb2.Ticker]],
) -> None:
    ticks = [t for batch in batches for t in batch]
    cols = decode(b"".join(reply(b) for b in batches), len(batches))
    assert cols is not None
    models: list[Any] = []
    tickers_from_columns("HK.00700", cols, models)
    expected = tickers_from_pb(1, "00700", "TENCENT", ticks)
    assert [m.__dict__ for m in models] == [m.__dict__ for m in expected]


def test_get_ticker_reply_decodes_like_a_push() -> None:
    """3010 and 3011 share their S2C field numbers: one view serves both."""
    ticks = [qot_common_pb2.Ticker(time="t", sequence=i, dir=1, price=1.0, volume=1, turnover=1.0)
             for i in range(3)]  # fmt: skip
    body = reply(ticks, module=qot_get_ticker_pb2)
    assert decode(body) == exact([reply(ticks)])


# -------------------------------------------------------------------------------- declining


def _ticks(n: int, **extra: Any) -> list[qot_common_pb2.Ticker]:
    return [
        qot_common_pb2.Ticker(
            time="10:00", sequence=i, dir=1, price=1.5, volume=2, turnover=3.0, **extra
        )
        for i in range(n)
    ]


def test_declines_more_than_one_security() -> None:
    a = reply(_ticks(1), code="00700")
    b = reply(_ticks(1), code="09988")
    assert decode(a + b, 2) is None
    assert decode(a + a, 2) is not None


def test_declines_different_markets_or_names() -> None:
    a = reply(_ticks(1), market=1)
    assert decode(a + reply(_ticks(1), market=2), 2) is None
    assert decode(a + reply(_ticks(1), name="OTHER"), 2) is None
    assert decode(a + reply(_ticks(1), name=None), 2) is None


def test_declines_a_wrong_message_count() -> None:
    a = reply(_ticks(2))
    assert decode(a, 2) is None
    assert decode(a + a, 1) is None


def test_declines_an_optional_field_on_some_ticks_only() -> None:
    mixed = _ticks(1, type=3) + _ticks(1)
    assert decode(reply(mixed)) is None


def _varint(n: int) -> bytes:
    out = b""
    while n > 127:
        out += bytes([n & 127 | 128])
        n >>= 7
    return out + bytes([n])


def test_declines_a_tick_that_repeats_a_field() -> None:
    """A Ticker with ``price`` written twice: the exact schema keeps the last value."""
    one = qot_common_pb2.Ticker(time="x", sequence=9, dir=1, price=1.0, volume=1, turnover=1.0)
    doubled = one.SerializeToString() + b"\x21" + struct.pack("<d", 2.0)
    s2c = qot_update_ticker_pb2.S2C()
    s2c.security.market = 1
    s2c.security.code = "00700"
    s2c.tickerList.extend(_ticks(2))
    inner = s2c.SerializeToString() + b"\x12" + _varint(len(doubled)) + doubled
    body = b"\x08\x00\x22" + _varint(len(inner)) + inner
    assert exact([body]).price == [1.5, 1.5, 2.0]
    assert security_key(body) is not None
    assert decode(body) is None


def test_declines_failed_replies_and_garbage() -> None:
    failed = qot_update_ticker_pb2.Response(retType=-1, retMsg="no").SerializeToString()
    assert decode(failed) is None
    assert decode(b"\xff\xff\xff") is None
    assert decode(b"") is None
    ok = reply(_ticks(1))
    assert decode(ok + failed, 2) is None


def test_an_empty_tick_list_decodes_to_no_ticks() -> None:
    cols = decode(reply([]))
    assert cols is not None and cols.n == 0 and cols.name == "TENCENT"


# -------------------------------------------------------------------------------- routing key


def test_security_key_is_the_encoded_security() -> None:
    for n in (0, 1, 10, 200):  # s2c length varint of 1, 2 and 3 bytes
        body = reply(_ticks(n, type=1), code="00700")
        key = security_key(body)
        assert key == qot_common_pb2.Security(market=1, code="00700").SerializeToString()


def test_security_key_declines_other_layouts() -> None:
    assert security_key(b"") is None
    assert security_key(b"\x08\x00\x22") is None
    assert security_key(b"\x08\x00\x22\x05") is None
    failed = qot_update_ticker_pb2.Response(retType=-1, retMsg="x").SerializeToString()
    assert security_key(failed) is None
    with_msg = qot_update_ticker_pb2.Response(retType=0, retMsg="ok")
    with_msg.s2c.security.market = 1
    with_msg.s2c.security.code = "00700"
    assert security_key(with_msg.SerializeToString()) is None
    # s2c written with the name first (legal, no serializer does it): no key, no guess
    s2c = qot_update_ticker_pb2.S2C(name="N")
    s2c.security.market = 1
    s2c.security.code = "00700"
    odd = b"\x08\x00" + b"\x22" + bytes([len(s2c.SerializeToString())])
    name_first = b"\x1a\x01N" + qot_common_pb2.Security(market=1, code="00700").SerializeToString()
    assert security_key(odd + name_first) is None


@given(st.binary(max_size=64))
def test_security_key_and_decode_never_raise(data: bytes) -> None:
    security_key(data)
    decode(data)
    decode(data, 3)


# -------------------------------------------------------------------------------- TickColumns


def test_take_slice_and_extend_keep_columns_aligned() -> None:
    cols = from_pb(1, "00700", "T", _ticks(3, type=2) + _ticks(2))
    assert cols.type == [2, 2, 2, -1, -1]
    assert cols.hp_volume is None and cols.recv_time is None
    assert cols.take([0, 4]).sequence == [0, 1]
    assert cols.take([0, 4]).type == [2, -1]
    part = cols.slice(1, 4)
    assert part.n == 3 and part.sequence == [1, 2, 0]
    assert cols.slice(4, 10).n == 1
    other = from_pb(1, "00700", "", _ticks(2, hpVolume=5.0))
    cols.extend(other)
    assert cols.n == 7
    assert cols.hp_volume == [None] * 5 + [5.0, 5.0]
    assert cols.name == "T"  # an absent name does not overwrite a known one
    assert len(cols.time) == len(cols.type or []) == 7


def test_columns_repr_and_equality() -> None:
    a = from_pb(1, "00700", "T", _ticks(2))
    assert "00700" in repr(a) and "n=2" in repr(a)
    assert a == from_pb(1, "00700", "T", _ticks(2))
    assert a != from_pb(1, "00700", "U", _ticks(2))
    assert a != from_pb(1, "00700", "T", _ticks(2, type=0))  # 0 present is not absent
    assert (a == 1) is False


# -------------------------------------------------------------------------------- SDK's bytes

SDK_ENCODER = r"""
import json, sys
from pathlib import Path
import importlib.util
spec = importlib.util.find_spec("futu")
sys.path.insert(0, str(Path(spec.origin).parent / "common" / "pb"))
import Qot_UpdateTicker_pb2 as U
out = []
for case in json.loads(sys.argv[1]):
    r = U.Response(retType=0)
    r.s2c.security.market = case["market"]
    r.s2c.security.code = case["code"]
    if case["name"] is not None:
        r.s2c.name = case["name"]
    for t in case["ticks"]:
        tk = r.s2c.tickerList.add()
        for k, v in t.items():
            setattr(tk, k, v)
    out.append(r.SerializeToString().hex())
print(json.dumps(out))
"""


def test_replies_serialized_by_the_sdk_classes_decode_like_ours(tmp_path: Path) -> None:
    if importlib.util.find_spec("futu") is None:
        pytest.skip("futu-api (the official SDK) is not installed")
    base = {"time": "2021-06-09 11:02:09.500", "dir": 2, "price": 598.5, "volume": 300,
            "turnover": 179550.0}  # fmt: skip
    full = {**base, "recvTime": 1.5, "type": 28, "typeSign": 85, "pushDataType": 2,
            "timestamp": 1623207729.5, "hpVolume": 300.25}  # fmt: skip
    cases = [
        {"market": 1, "code": "00700", "name": "TENCENT",
         "ticks": [{**base, "sequence": 6971624110669434300 + i} for i in range(10)]},
        {"market": 11, "code": "AAPL", "name": None,
         "ticks": [{**full, "sequence": 7 + i} for i in range(3)]},
        {"market": 1, "code": "00700", "name": "TENCENT",
         "ticks": [{**full, "sequence": 1}, {**base, "sequence": 2}]},
    ]  # fmt: skip
    env = {**os.environ, "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c", SDK_ENCODER, json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
        check=True,
    )
    bodies = [bytes.fromhex(h) for h in json.loads(proc.stdout)]
    for body in bodies:
        assert security_key(body) is not None
    assert decode(bodies[0]) == exact([bodies[0]])
    assert decode(bodies[1]) == exact([bodies[1]])
    assert decode(bodies[2]) is None  # presence differs between its ticks: exact path
    assert decode(bodies[0] + bodies[0], 2) == exact([bodies[0], bodies[0]])
    assert _columns.decode(bodies[0] + bodies[1], 2) is None


@given(st.lists(st.lists(tick(), max_size=4), min_size=1, max_size=3), st.booleans())
@settings(max_examples=100, deadline=None)
def test_frames_from_columns_equal_frames_from_models(
    batches: list[list[qot_common_pb2.Ticker]], push: bool
) -> None:
    """The polars path (lookups, constants, hpVolume) says what the models say."""
    pl = pytest.importorskip("polars")
    from aiofutu.frames import ColumnBuffer, to_polars

    buf = ColumnBuffer(push_data_type=push)
    models: list[Any] = []
    for i, ticks in enumerate(batches):
        code = ("00700", "09988")[i % 2]
        cols = from_pb(1, code, f"N{i}", ticks)
        buf.add(f"HK.{code}", cols)
        tickers_from_columns(f"HK.{code}", cols, models)
    expected = to_polars(models, push_data_type=push)
    got = buf.to_frame()
    assert got.schema == expected.schema
    assert got.equals(expected)
    assert isinstance(got, pl.DataFrame)
