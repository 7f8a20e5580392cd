"""The WebSocket gateway's packet codec, fed bytes: the npm SDK's observed messages, both
headers big-endian, 64-bit sections, the websocket key rule, and typed errors."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiofutu import _wscodec as ws
from aiofutu._pb import init_websocket_pb2, qot_get_ticker_pb2, qot_sub_pb2
from aiofutu.errors import LocalProtocolError, RemoteProtocolError

MD5_TESTKEY = "221b368d7f5f597867f525971f28ff75"
SIGN = "66 74 2d 76 31 2e 30 00"


def wire(*chunks: str | bytes) -> bytes:
    """Hex chunks (``"0a 11"``) and raw byte chunks, joined."""
    return b"".join(bytes.fromhex(c) if isinstance(c, str) else c for c in chunks)


# The first three requests of the npm SDK with key "testkey" (fact sheet section 3.3).
OBSERVED_INIT = wire(
    SIGN, "00 00 00 01", "00 00 00 00 00 00 00 02", "0a 2e 22 20", MD5_TESTKEY.encode(),
    "32 0a", b"JavaScript",
)  # fmt: skip
OBSERVED_SUB = wire(
    SIGN, "00 00 0b b9", "00 00 00 00 00 00 00 03",
    "0a 11 0a 09 08 01 12 05", b"00700", "10 04 18 01 20 01",
)  # fmt: skip
OBSERVED_GET_TICKER = wire(
    SIGN, "00 00 0b c2", "00 00 00 00 00 00 00 04", "0a 0d 0a 09 08 01 12 05", b"00700", "10 0a"
)


def test_observed_lengths() -> None:
    assert (len(OBSERVED_INIT), len(OBSERVED_SUB), len(OBSERVED_GET_TICKER)) == (68, 39, 35)


def test_key_digest_is_md5_hex() -> None:
    assert ws.websocket_key_digest("testkey") == MD5_TESTKEY
    assert ws.websocket_key_digest("") == ws.websocket_key_digest(None) == ""
    assert ws.key_matches(MD5_TESTKEY.upper(), MD5_TESTKEY)
    assert ws.key_matches(MD5_TESTKEY, MD5_TESTKEY.upper())
    assert not ws.key_matches("testkey", MD5_TESTKEY)  # the plaintext is not the key
    assert not ws.key_matches("", MD5_TESTKEY)


def test_init_request_is_byte_for_byte_the_sdks() -> None:
    assert ws.encode_init_request("testkey", 2, programming_language="JavaScript") == OBSERVED_INIT


def test_init_without_key_sends_an_empty_string() -> None:
    message = ws.encode_init_request(None, 2, programming_language="JavaScript")
    assert message[20:] == wire("0a 0e 22 00 32 0a", b"JavaScript")


def test_decode_observed_init() -> None:
    request = ws.decode_request(OBSERVED_INIT)
    assert (request.cmd, request.section) == (ws.CMD_INIT, 2)
    c2s = ws.decode_init_request(request)
    assert c2s.websocketKey == MD5_TESTKEY
    assert c2s.programmingLanguage == "JavaScript"
    assert not c2s.HasField("clientID")


def test_decode_observed_sub_and_get_ticker() -> None:
    sub = ws.decode_request(OBSERVED_SUB)
    assert (sub.cmd, sub.section) == (3001, 3)
    c2s = qot_sub_pb2.Request.FromString(sub.body).c2s
    assert [(s.market, s.code) for s in c2s.securityList] == [(1, "00700")]
    assert list(c2s.subTypeList) == [4]
    assert c2s.isSubOrUnSub and c2s.isRegOrUnRegPush
    assert not c2s.HasField("isFirstPush")  # the SDK adds nothing: server defaults apply

    ticker = ws.decode_request(OBSERVED_GET_TICKER)
    assert (ticker.cmd, ticker.section) == (3010, 4)
    t2s = qot_get_ticker_pb2.Request.FromString(ticker.body).c2s
    assert (t2s.security.market, t2s.security.code, t2s.maxRetNum) == (1, "00700", 10)


def test_encode_request_rebuilds_the_observed_bytes() -> None:
    for message in (OBSERVED_SUB, OBSERVED_GET_TICKER):
        request = ws.decode_request(message)
        assert ws.encode_request(request.cmd, request.section, request.body) == message


def test_reply_header_layout() -> None:
    body = init_websocket_pb2.Response(retType=0).SerializeToString()
    message = ws.encode_reply(1, 2, body, error=-7, errmsg="bad")
    assert len(message) == 44 + len(body)
    assert message[:8] == b"ft-v1.0\x00"
    assert message[8:12] == bytes.fromhex("00000001")
    assert message[12:20] == bytes.fromhex("0000000000000002")
    assert message[20:24] == struct.pack(">i", -7)
    assert message[24:44] == b"bad" + bytes(17)
    assert message[44:] == body
    assert ws.decode_reply(message) == ws.WsReply(1, 2, body, -7, "bad")


def test_push_and_empty_reply() -> None:
    push = ws.decode_reply(ws.encode_reply(3011, 0, b"\x08\x00"))
    assert push == ws.WsReply(3011, 0, b"\x08\x00", 0, "")
    assert ws.decode_reply(ws.encode_reply(3001, 9, b"")).body == b""  # 44 bytes: no body


@given(
    cmd=st.one_of(st.just(1), st.integers(1000, 2**32 - 1)),
    section=st.integers(0, 2**64 - 1),
    body=st.binary(max_size=64),
    error=st.integers(-(2**31), 2**31 - 1),
    errmsg=st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=20),
)
def test_round_trips(cmd: int, section: int, body: bytes, error: int, errmsg: str) -> None:
    assert ws.decode_request(ws.encode_request(cmd, section, body)) == (cmd, section, body)
    reply = ws.decode_reply(ws.encode_reply(cmd, section, body, error=error, errmsg=errmsg))
    assert reply == (cmd, section, body, error, errmsg)


def test_sections_are_64_bit() -> None:
    big = 2**64 - 1
    message = ws.encode_request(3010, big, b"")
    assert message[12:20] == b"\xff" * 8
    assert ws.decode_request(message).section == big
    with pytest.raises(LocalProtocolError):
        ws.encode_request(3010, 2**64, b"")
    with pytest.raises(LocalProtocolError):
        ws.encode_reply(3010, -1, b"")


@pytest.mark.parametrize("cmd", [0, 2, 999, 2**32])
def test_encode_request_refuses_unknown_cmds(cmd: int) -> None:
    with pytest.raises(LocalProtocolError):
        ws.encode_request(cmd, 3, b"")


def test_errmsg_must_be_ascii_and_short() -> None:
    with pytest.raises(LocalProtocolError, match="ASCII"):
        ws.encode_reply(3001, 3, b"", errmsg="訂閲失敗")
    with pytest.raises(LocalProtocolError, match="20 bytes"):
        ws.encode_reply(3001, 3, b"", errmsg="x" * 21)
    assert ws.ascii_errmsg("訂閲 failed, try again later") == "?? failed, try again"
    ws.encode_reply(3001, 3, b"", errmsg=ws.ascii_errmsg("訂閲 failed, try again later"))


def _remote_error(message: bytes, **kwargs: int) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError) as info:
        ws.decode_request(message, **kwargs)
    assert info.value.recoverable  # one WebSocket message per packet: the next one is fine
    return info.value


@pytest.mark.parametrize("size", [0, 1, 8, 19])
def test_short_request_header(size: int) -> None:
    error = _remote_error(OBSERVED_SUB[:size])
    assert "shorter than the 20-byte header" in str(error)
    assert (error.proto_id, error.serial) == (None, None)


@pytest.mark.parametrize(
    "sign", [b"ft-v1.1\x00", b"FT\x00\x00\x00\x00\x00\x00", b"ft-v1.0 ", bytes(8)]
)
def test_wrong_request_sign(sign: bytes) -> None:
    error = _remote_error(sign + OBSERVED_SUB[8:])
    assert "bad sign" in str(error)
    assert (error.proto_id, error.serial) == (3001, 3)  # still answerable


def test_a_tcp_frame_is_not_a_websocket_packet() -> None:
    from aiofutu._codec import encode_frame

    assert "bad sign" in str(_remote_error(encode_frame(3001, 3, b"\x0a\x00")))


@pytest.mark.parametrize("cmd", [0, 2, 999])
def test_unknown_cmd(cmd: int) -> None:
    error = _remote_error(struct.pack(">8sIQ", ws.WS_MAGIC, cmd, 5))
    assert f"unknown cmd {cmd}" in str(error)
    assert (error.proto_id, error.serial) == (cmd, 5)


def test_oversized_request() -> None:
    error = _remote_error(OBSERVED_SUB, max_size=38)
    assert "exceeds the limit of 38" in str(error)
    ws.decode_request(OBSERVED_SUB, max_size=39)


def test_garbage_init_body() -> None:
    request = ws.WsRequest(ws.CMD_INIT, 2, b"\xff\xff\xff")
    with pytest.raises(RemoteProtocolError) as info:
        ws.decode_init_request(request)
    assert info.value.recoverable and (info.value.proto_id, info.value.serial) == (1, 2)
    assert ws.decode_init_request(ws.WsRequest(1, 2, b"")).websocketKey == ""  # all optional


def test_reply_decoding_errors() -> None:
    with pytest.raises(RemoteProtocolError, match="44-byte header"):
        ws.decode_reply(ws.encode_reply(3001, 3, b"")[:43])
    with pytest.raises(RemoteProtocolError, match="bad sign"):
        ws.decode_reply(b"FT" + ws.encode_reply(3001, 3, b"")[2:])
    with pytest.raises(RemoteProtocolError, match="exceeds"):
        ws.decode_reply(ws.encode_reply(3001, 3, b"xx"), max_size=45)
    # The SDK only needs the sign to contain ft-v1.0; errmsg loses its NUL padding.
    lenient = b"ft-v1.0x" + ws.encode_reply(3001, 3, b"")[8:24] + b"a\x00b" + bytes(17)
    assert ws.decode_reply(lenient) == ws.WsReply(3001, 3, b"", 0, "ab")
