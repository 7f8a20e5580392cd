"""Security code strings <-> (market, code), with the SDK's rules (protocol.md section 7.1)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aiofutu
from aiofutu import ConfigurationError, FutuError, InvalidCode, Market, format_code, parse_code

PREFIX_TABLE = [
    ("HK", 1),
    ("HK_FUTURE", 2),
    ("US", 11),
    ("SH", 21),
    ("SZ", 22),
    ("SG", 31),
    ("JP", 41),
    ("AU", 51),
    ("MY", 61),
    ("CA", 71),
    ("FX", 81),
    ("CC", 91),
    ("EC", 101),
]


def test_hk_code() -> None:
    market, code = parse_code("HK.00700")
    assert market is Market.HK
    assert code == "00700"
    assert market.wire == 1


def test_us_index_keeps_leading_dot() -> None:
    assert parse_code("US..DJI") == (Market.US, ".DJI")
    assert parse_code("US..IXIC") == (Market.US, ".IXIC")


def test_split_at_first_dot_only() -> None:
    assert parse_code("US.BRK.B") == (Market.US, "BRK.B")


@pytest.mark.parametrize(("prefix", "wire"), PREFIX_TABLE)
def test_every_market_prefix(prefix: str, wire: int) -> None:
    market, code = parse_code(f"{prefix}.ABC123")
    assert market.value == prefix
    assert market.wire == wire
    assert code == "ABC123"


def test_prefix_table_is_complete() -> None:
    assert {(m.value, m.wire) for m in Market if m is not Market.NONE} == set(PREFIX_TABLE)


def test_na_prefix_is_accepted_like_the_sdk() -> None:
    assert parse_code("N/A.00700") == (Market.NONE, "00700")


def test_repeat_parse_is_stable() -> None:
    first = parse_code("SZ.000001")
    assert parse_code("SZ.000001") == first == (Market.SZ, "000001")


@pytest.mark.parametrize(("prefix", "wire"), PREFIX_TABLE)
def test_format_code(prefix: str, wire: int) -> None:
    assert format_code(wire, "00700") == f"{prefix}.00700"
    market, code = parse_code(format_code(wire, "00700"))
    assert (market.value, market.wire, code) == (prefix, wire, "00700")


def test_format_code_hk_future() -> None:
    assert format_code(2, "999010") == "HK_FUTURE.999010"


@pytest.mark.parametrize("market", [0, 3, 12, 100, 999, -1, 2**31 - 1])
def test_format_code_unknown_market(market: int) -> None:
    assert format_code(market, "xyz") == "N/A.xyz"


def test_format_code_keeps_dots() -> None:
    assert format_code(11, ".DJI") == "US..DJI"


INVALID = ["AAPL", "hk.00700", "HK.", "", ".00700", "HK00700", "Hk.00700", "XX.1", None, 123]


@pytest.mark.parametrize("bad", INVALID)
def test_invalid_codes_raise_invalid_code(bad: object) -> None:
    with pytest.raises(InvalidCode) as info:
        parse_code(bad)
    err = info.value
    assert isinstance(err, ValueError)
    assert isinstance(err, ConfigurationError)
    assert isinstance(err, FutuError)
    assert isinstance(err, aiofutu.InvalidCode)
    message = str(err)
    # the message shows the offending value itself (not just its type) and the expected form
    assert re.search(rf"(?<!\w){re.escape(repr(bad))}(?!\w)", message), message
    assert "MARKET.CODE" in message
    assert "HK.00700" in message


def test_lower_case_prefix_message_names_the_markets() -> None:
    with pytest.raises(InvalidCode, match="upper-case") as info:
        parse_code("hk.00700")
    assert "'hk'" in str(info.value)
    assert "HK_FUTURE" in str(info.value)


def test_non_string_message_names_the_type() -> None:
    with pytest.raises(InvalidCode, match="int"):
        parse_code(123)
    with pytest.raises(InvalidCode, match="NoneType"):
        parse_code(None)
    with pytest.raises(InvalidCode, match="bytes"):
        parse_code(b"HK.00700")


@settings(max_examples=200, deadline=None, database=None)
@given(
    prefix=st.sampled_from([p for p, _ in PREFIX_TABLE]),
    code=st.text(min_size=1, max_size=20),
)
def test_parse_format_round_trip(prefix: str, code: str) -> None:
    market, rest = parse_code(f"{prefix}.{code}")
    assert market.value == prefix
    assert rest == code
    assert format_code(market.wire, rest) == f"{prefix}.{code}"


@settings(max_examples=200, deadline=None, database=None)
@given(text=st.text(max_size=12))
def test_parse_either_succeeds_consistently_or_raises_invalid_code(text: str) -> None:
    try:
        market, code = parse_code(text)
    except InvalidCode:
        prefix, dot, rest = text.partition(".")
        assert not dot or not rest or prefix not in {m.value for m in Market}
    else:
        assert text == f"{market.value}.{code}"
        assert code


@pytest.mark.parametrize(("bad", "says"), [("HK.", "the code after 'HK.' is empty"),
                                           ("US.", "the code after 'US.' is empty"),
                                           ("AAPL", "no market prefix"),
                                           (".", "no market prefix")])  # fmt: skip
def test_message_names_what_is_missing(bad: str, says: str) -> None:
    """``HK.`` has a market prefix: what is empty is the code after it (issue #16 item 15)."""
    with pytest.raises(InvalidCode) as raised:
        parse_code(bad)
    assert says in str(raised.value)
    assert "no market prefix" not in str(raised.value) or says == "no market prefix"
