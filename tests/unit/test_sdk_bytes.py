"""Wire compatibility with the official SDK (futu-api), both directions, without OpenD.

The SDK is only ever imported in a subprocess: importing ``futu`` creates log folders under
``$HOME`` and installs a SIGINT handler that calls ``os._exit``. So the subprocess gets a temporary
``HOME``, and this module does not even ``pytest.importorskip("futu")`` (that would import it into
the pytest process); it checks ``importlib.util.find_spec("futu")`` instead, which runs no SDK code.

One subprocess per module does all SDK work (about 1 s):

* SDK -> us: it packs requests with the SDK's own functions (``InitConnect.pack_req``,
  ``SubscriptionQuery.pack_*``, ``TickerQuery.pack_req``, ...; the same arguments as the SDK's
  call sites) and returns the frame bytes. Here they are decoded by our ``FrameDecoder`` and our
  ``_pb`` Request messages, and rebuilt byte for byte with ``encode_frame``.
* us -> SDK: frames built here with ``encode_frame`` and our ``_pb`` Response messages are fed to
  the SDK's ``parse_rsp`` (its frame parser). 3010 replies go through the SDK's real
  ``OpenQuoteContext.get_rt_ticker``: only ``_get_sync_query_processor`` (the part that would talk
  to a socket) is replaced by a stub that calls the SDK's own pack function and then the SDK's
  ``TickerQuery.unpack_rsp`` on the parsed frame, so the DataFrame is built by the SDK's code.
  3011 pushes go through the SDK's ``TickerHandlerBase.on_recv_rsp``.
* It also dumps the SDK's code-string and enum tables, which are compared with ours.

Nothing from the SDK is copied into aiofutu: it is run here as a peer.
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

from aiofutu import (
    InvalidCode,
    PushDataType,
    SubType,
    TickerDirection,
    TickerType,
    format_code,
    parse_code,
    to_polars,
)
from aiofutu._codec import Frame, FrameDecoder, encode_frame
from aiofutu._pb import (
    get_global_state_pb2,
    init_connect_pb2,
    keep_alive_pb2,
    qot_common_pb2,
    qot_get_sub_info_pb2,
    qot_get_ticker_pb2,
    qot_reg_qot_push_pb2,
    qot_sub_pb2,
    qot_update_ticker_pb2,
)
from aiofutu.enums import Market, Session
from aiofutu.models import tickers_from_pb

SDK_SCRIPT = r"""
import json, os, sys
from pathlib import Path

out_path, in_dir = Path(sys.argv[1]), Path(sys.argv[2])

import futu
futu.set_futu_debug_model(False)
from futu.common.constant import (
    Market, PushDataType, SecurityFirm, Session, SubType, TickerDirect, TickerType,
)
from futu.common.sys_config import SysConfig
from futu.common.utils import merge_qot_mkt_stock_str, parse_rsp, split_stock_str
from futu.quote.open_quote_context import OpenQuoteContext
from futu.quote.quote_query import (
    GlobalStateQuery, InitConnect, KeepAlive, SubscriptionQuery, TickerQuery,
)
from futu.quote.quote_response_handler import TickerHandlerBase

result = {"requests": {}, "responses": {}}

def keep(name, packed):
    ret, msg, data, proto_id, serial = packed
    assert ret == 0, (name, msg)
    result["requests"][name] = {"hex": data.hex(), "proto_id": proto_id, "serial": serial}

# --- requests, with the arguments the SDK's own call sites use -------------------------------
keep("init_connect", InitConnect.pack_req(
    client_ver=int(SysConfig.get_client_ver()), client_id=str(SysConfig.get_client_id()),
    recv_notify=True, is_encrypt=False, push_proto_fmt=SysConfig.get_proto_fmt(), ai_type=0))
keep("keep_alive", KeepAlive.pack_req(0))
keep("global_state", GlobalStateQuery.pack_req(123456789012, 0))
keep("subscribe", SubscriptionQuery.pack_subscribe_req(
    ["HK.00700", "US..DJI"], ["TICKER", "QUOTE"], 0, True, True, False, False))
keep("subscribe_us", SubscriptionQuery.pack_subscribe_req(
    ["US.AAPL"], ["TICKER"], 0, False, False, False, True, session=Session.ETH))
keep("unsubscribe", SubscriptionQuery.pack_unsubscribe_req(["HK.00700"], ["TICKER"], False, 0))
keep("unsubscribe_all", SubscriptionQuery.pack_unsubscribe_req(None, None, True, 0))
keep("unreg_push", SubscriptionQuery.pack_unpush_req(["HK.00700"], ["TICKER"], 0))
keep("sub_info", SubscriptionQuery.pack_subscription_query_req(True, 0))
keep("get_ticker", TickerQuery.pack_req("HK.00700", 100, 0))

# --- responses built by aiofutu ---------------------------------------------------------------
def frame_info(parsed):
    return {
        "err": parsed.err.name,
        "msg": str(parsed.msg),
        "total_len": parsed.total_len,
        "proto_id": parsed.head_dict["proto_id"] if parsed.head_dict else None,
        "serial": parsed.head_dict["serial_no"] if parsed.head_dict else None,
        "ret_type": parsed.rsp_pb.retType if parsed.rsp_pb is not None else None,
    }

def frame_table(df):
    return {
        "columns": list(df.columns),
        "dtypes": {c: str(df[c].dtype) for c in df.columns},
        "rows": [list(row) for row in zip(*(df[c].tolist() for c in df.columns))],
    }

def rt_ticker_via_sdk(rsp_pb):
    ctx = OpenQuoteContext.__new__(OpenQuoteContext)  # no socket, no threads
    ctx._OpenQuoteContext__security_firm = SecurityFirm.NONE  # the constructor's default
    ctx.get_sync_conn_id = lambda: 0
    packed = []
    def processor(pack_func, unpack_func):
        def run(**kargs):
            packed.append(pack_func(**kargs))
            return unpack_func(rsp_pb)
        return run
    ctx._get_sync_query_processor = processor
    ret, data = ctx.get_rt_ticker("HK.00700", 100)
    out = {"ret": ret, "request": packed[0][2].hex()}
    if ret == 0:
        out.update(frame_table(data))
    else:
        out["error"] = data
    return out

for path in sorted(in_dir.glob("*.bin")):
    data = path.read_bytes()
    parsed = parse_rsp(data, 0, False)
    info = frame_info(parsed)
    if parsed.err.name == "OK" and info["proto_id"] == 3010:
        info["get_rt_ticker"] = rt_ticker_via_sdk(parsed.rsp_pb)
    if parsed.err.name == "OK" and info["proto_id"] == 3011:
        ret, df = TickerHandlerBase().on_recv_rsp(parsed.rsp_pb)
        info["push"] = {"ret": ret, **(frame_table(df) if ret == 0 else {"error": df})}
    result["responses"][path.stem] = info

# --- tables -----------------------------------------------------------------------------------
codes = json.loads((in_dir / "codes.json").read_text())
result["split_stock_str"] = {c: list(split_stock_str(c)) for c in codes}
result["merge"] = {str(m): merge_qot_mkt_stock_str(m, "00700") for m in range(-1, 130)}
result["ticker_type"] = {str(i): TickerType.to_string2(i) for i in range(-2, 40)}
result["ticker_direction"] = {str(i): TickerDirect.to_string2(i) for i in range(-2, 8)}
result["push_data_type"] = {str(i): PushDataType.to_string2(i) for i in range(-2, 8)}
result["sub_type"] = SubType().str_dic
result["market"] = Market().str_dic
result["session"] = Session().str_dic

out_path.write_text(json.dumps(result))
sys.stdout.flush()
os._exit(0)  # skip the SDK's interpreter-exit machinery
"""

CODES = [
    "HK.00700",
    "US..DJI",
    "US.AAPL",
    "US.BRK.B",
    "N/A.00700",
    "HK_FUTURE.999010",
    "SH.600000",
    "SZ.000001",
    "SG.D05",
    "JP.7203",
    "AU.BHP",
    "MY.1155",
    "CA.RY",
    "FX.USDHKD",
    "CC.BTCUSD",
    "EC.X1",
    "hk.00700",
    "HK.",
    "",
    ".00700",
    "HK00700",
    "AAPL",
    "XX.1",
    "Hk.00700",
    ".",
    "..",
    "HK..",
]

SEQ = 6971624110669434300


def pb_ticker(**fields: Any) -> qot_common_pb2.Ticker:
    base: dict[str, Any] = {
        "time": "2021-06-09 11:02:09.500",
        "sequence": SEQ,
        "dir": 1,
        "price": 598.5,
        "volume": 300,
        "turnover": 179550.0,
    }
    base.update(fields)
    return qot_common_pb2.Ticker(**base)


GET_TICKER_TICKS = [
    pb_ticker(type=1, pushDataType=1, recvTime=1.5, typeSign=32, timestamp=1623207729.5),
    pb_ticker(sequence=SEQ + 1, dir=2, hpVolume=123.6, volume=123),  # type absent
    pb_ticker(sequence=SEQ + 2, dir=3, type=28),
    pb_ticker(sequence=SEQ + 3, dir=0, type=77, price=0.01, turnover=1e12),
    pb_ticker(sequence=SEQ + 4, dir=9, type=31, time="2021-06-09 11:02:10"),
]
HP_ZERO_TICK = pb_ticker(sequence=SEQ + 9, hpVolume=0.0, volume=500)
PUSH_TICKS = [
    pb_ticker(sequence=7490506385373790208, type=21, pushDataType=1),
    pb_ticker(sequence=7490506389668757504, dir=2, pushDataType=2, hpVolume=0.5, volume=0),
    pb_ticker(sequence=7490506389668757505, dir=3, type=0, pushDataType=3),
    pb_ticker(sequence=7490506389668757506, pushDataType=0),
]


def ticker_response(module: Any, market: int, code: str, name: str | None, ticks: Any) -> bytes:
    rsp = module.Response(retType=0)
    rsp.s2c.security.market = market
    rsp.s2c.security.code = code
    if name is not None:
        rsp.s2c.name = name
    rsp.s2c.tickerList.extend(ticks)
    return bytes(rsp.SerializeToString())


def our_frames() -> dict[str, bytes]:
    err = qot_get_ticker_pb2.Response(retType=-1, retMsg="not subscribed: TICKER", errCode=0)
    ok_sub_reply = qot_sub_pb2.Response(retType=0).SerializeToString()
    return {
        "get_ticker_ok": encode_frame(
            3010,
            4242,
            ticker_response(qot_get_ticker_pb2, 1, "00700", "TENCENT", GET_TICKER_TICKS),
        ),
        "get_ticker_no_name": encode_frame(
            3010, 4243, ticker_response(qot_get_ticker_pb2, 1, "00700", None, GET_TICKER_TICKS[:1])
        ),
        "get_ticker_error": encode_frame(3010, 4244, err.SerializeToString()),
        "get_ticker_hp_zero": encode_frame(
            3010, 4245, ticker_response(qot_get_ticker_pb2, 1, "00700", "T", [HP_ZERO_TICK])
        ),
        "update_ticker": encode_frame(
            3011, 0, ticker_response(qot_update_ticker_pb2, 11, "AAPL", "Apple", PUSH_TICKS)
        ),
        # a 3010 reply followed by the start of another frame: total_len must cover only one
        "two_frames": encode_frame(
            3010, 1, ticker_response(qot_get_ticker_pb2, 1, "00700", "X", GET_TICKER_TICKS[:1])
        )
        + encode_frame(3011, 2, b"")[:10],
        # SDK quirks, pinned so the fact sheet stays true
        "empty_body": encode_frame(3001, 9, b""),
        "empty_body_plus_one": encode_frame(3001, 9, b"") + b"\x00",
        "bad_magic": b"XY" + encode_frame(3001, 10, ok_sub_reply)[2:],
    }


@pytest.fixture(scope="module")
def sdk(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if importlib.util.find_spec("futu") is None:
        pytest.skip("futu-api (the official SDK) is not installed")
    work = tmp_path_factory.mktemp("sdk")
    home = work / "home"
    home.mkdir()
    frames_dir = work / "frames"
    frames_dir.mkdir()
    for name, data in our_frames().items():
        (frames_dir / f"{name}.bin").write_bytes(data)
    (frames_dir / "codes.json").write_text(json.dumps(CODES))
    script = work / "sdk_peer.py"
    script.write_text(SDK_SCRIPT)
    out = work / "out.json"
    env = {**os.environ, "HOME": str(home), "USERPROFILE": str(home)}
    proc = subprocess.run(
        [sys.executable, str(script), str(out), str(frames_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=work,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result: dict[str, Any] = json.loads(out.read_text())
    result["_home"] = str(home)
    return result


# =============================================================================== SDK -> aiofutu


def sdk_request(sdk: dict[str, Any], name: str) -> tuple[bytes, Frame, dict[str, Any]]:
    info = sdk["requests"][name]
    data = bytes.fromhex(info["hex"])
    decoder = FrameDecoder()
    decoder.feed(data)
    frame = decoder.next_frame()
    assert frame is not None
    assert decoder.buffered == 0
    return data, frame, info


ALL_REQUESTS = [
    ("init_connect", 1001, init_connect_pb2),
    ("keep_alive", 1004, keep_alive_pb2),
    ("global_state", 1002, get_global_state_pb2),
    ("subscribe", 3001, qot_sub_pb2),
    ("subscribe_us", 3001, qot_sub_pb2),
    ("unsubscribe", 3001, qot_sub_pb2),
    ("unsubscribe_all", 3001, qot_sub_pb2),
    ("unreg_push", 3002, qot_reg_qot_push_pb2),
    ("sub_info", 3003, qot_get_sub_info_pb2),
    ("get_ticker", 3010, qot_get_ticker_pb2),
]


@pytest.mark.parametrize(("name", "proto_id", "module"), ALL_REQUESTS)
def test_sdk_request_frames_decode_and_rebuild_byte_for_byte(
    sdk: dict[str, Any], name: str, proto_id: int, module: Any
) -> None:
    data, frame, info = sdk_request(sdk, name)
    assert frame.proto_id == proto_id == info["proto_id"]
    assert frame.serial == info["serial"]
    assert frame.fmt == 0  # protobuf
    assert frame.version == 0
    assert data[36:44] == bytes(8)
    assert struct.unpack_from("<I", data, 12)[0] == len(frame.body)
    request = module.Request.FromString(frame.body)
    assert request.IsInitialized()
    # re-serialising our parse gives the SDK's bytes, and so does our frame encoder
    assert request.SerializeToString() == frame.body
    assert encode_frame(frame.proto_id, frame.serial, frame.body) == data


def test_sdk_requests_in_one_stream(sdk: dict[str, Any]) -> None:
    names = [n for n, _, _ in ALL_REQUESTS]
    stream = b"".join(bytes.fromhex(sdk["requests"][n]["hex"]) for n in names)
    decoder = FrameDecoder()
    frames: list[Frame] = []
    for i in range(0, len(stream), 7):
        decoder.feed(stream[i : i + 7])
        frames.extend(decoder)
    assert [f.proto_id for f in frames] == [p for _, p, _ in ALL_REQUESTS]
    # one process-wide counter, +1 per packet, InitConnect included (protocol.md section 1.3)
    serials = [f.serial for f in frames]
    assert serials == list(range(serials[0], serials[0] + len(serials)))
    assert 1 <= serials[0] <= 10_000


def test_sdk_init_connect(sdk: dict[str, Any]) -> None:
    _, frame, _ = sdk_request(sdk, "init_connect")
    c2s = init_connect_pb2.Request.FromString(frame.body).c2s
    assert c2s.clientVer == 300
    assert c2s.clientID == "PyNormal"
    assert c2s.recvNotify is True
    assert c2s.packetEncAlgo == -1
    assert c2s.pushProtoFmt == 0
    assert c2s.HasField("pushProtoFmt")
    assert c2s.programmingLanguage == "Python"
    assert c2s.aiType == 0
    assert c2s.HasField("aiType")
    # -1 travels as a 10-byte varint: field 4, then ff ff ff ff ff ff ff ff ff 01
    assert b"\x20" + b"\xff" * 9 + b"\x01" in frame.body


def test_sdk_keep_alive_and_global_state(sdk: dict[str, Any]) -> None:
    _, frame, _ = sdk_request(sdk, "keep_alive")
    sent = keep_alive_pb2.Request.FromString(frame.body).c2s.time
    assert 1_700_000_000 < sent < 4_000_000_000  # Unix seconds, not milliseconds
    _, frame, _ = sdk_request(sdk, "global_state")
    assert get_global_state_pb2.Request.FromString(frame.body).c2s.userID == 123456789012


def test_sdk_subscribe(sdk: dict[str, Any]) -> None:
    _, frame, _ = sdk_request(sdk, "subscribe")
    c2s = qot_sub_pb2.Request.FromString(frame.body).c2s
    assert [(s.market, s.code) for s in c2s.securityList] == [(1, "00700"), (11, ".DJI")]
    assert list(c2s.subTypeList) == [SubType.TICKER.wire, SubType.QUOTE.wire] == [4, 1]
    assert c2s.isSubOrUnSub is True
    assert c2s.isFirstPush is True
    assert c2s.isRegOrUnRegPush is True
    assert c2s.HasField("isSubOrderBookDetail")
    assert c2s.isSubOrderBookDetail is False
    assert c2s.HasField("extendedTime")
    assert c2s.extendedTime is False
    assert c2s.HasField("session")
    assert c2s.session == Session.NONE.wire
    assert c2s.HasField("header")
    assert c2s.header.securityFirm == 0
    assert not c2s.HasField("isUnsubAll")
    assert list(c2s.regPushRehabTypeList) == []
    # subTypeList is unpacked on the wire: one tag (0x10) per element
    assert b"\x10\x04\x10\x01" in frame.body


def test_sdk_subscribe_us_extended(sdk: dict[str, Any]) -> None:
    _, frame, _ = sdk_request(sdk, "subscribe_us")
    c2s = qot_sub_pb2.Request.FromString(frame.body).c2s
    assert [(s.market, s.code) for s in c2s.securityList] == [(11, "AAPL")]
    assert list(c2s.subTypeList) == [4]
    assert c2s.isFirstPush is False
    assert c2s.isRegOrUnRegPush is False
    assert c2s.extendedTime is True
    assert c2s.session == Session.ETH.wire == 2


def test_sdk_unsubscribe(sdk: dict[str, Any]) -> None:
    _, frame, _ = sdk_request(sdk, "unsubscribe")
    c2s = qot_sub_pb2.Request.FromString(frame.body).c2s
    assert [(s.market, s.code) for s in c2s.securityList] == [(1, "00700")]
    assert list(c2s.subTypeList) == [4]
    assert c2s.HasField("isSubOrUnSub")
    assert c2s.isSubOrUnSub is False
    assert c2s.HasField("isRegOrUnRegPush")
    assert c2s.isRegOrUnRegPush is False
    assert c2s.HasField("isFirstPush")
    assert c2s.isFirstPush is False
    assert c2s.session == 0


def test_sdk_unsubscribe_all(sdk: dict[str, Any]) -> None:
    _, frame, _ = sdk_request(sdk, "unsubscribe_all")
    c2s = qot_sub_pb2.Request.FromString(frame.body).c2s
    assert c2s.isUnsubAll is True
    assert c2s.isSubOrUnSub is False
    assert len(c2s.securityList) == 0
    assert len(c2s.subTypeList) == 0
    assert {f.name for f, _ in c2s.ListFields()} == {"isSubOrUnSub", "isUnsubAll", "header"}


def test_sdk_unregister_push(sdk: dict[str, Any]) -> None:
    _, frame, _ = sdk_request(sdk, "unreg_push")
    c2s = qot_reg_qot_push_pb2.Request.FromString(frame.body).c2s
    assert [(s.market, s.code) for s in c2s.securityList] == [(1, "00700")]
    assert list(c2s.subTypeList) == [4]
    assert c2s.isRegOrUnReg is False
    assert c2s.HasField("isFirstPush")
    assert c2s.isFirstPush is False
    assert c2s.header.securityFirm == 0


def test_sdk_sub_info_has_no_header(sdk: dict[str, Any]) -> None:
    _, frame, _ = sdk_request(sdk, "sub_info")
    c2s = qot_get_sub_info_pb2.Request.FromString(frame.body).c2s
    assert c2s.isReqAllConn is True
    assert not c2s.HasField("header")


def test_sdk_get_ticker(sdk: dict[str, Any]) -> None:
    _, frame, info = sdk_request(sdk, "get_ticker")
    c2s = qot_get_ticker_pb2.Request.FromString(frame.body).c2s
    assert (c2s.security.market, c2s.security.code) == (1, "00700")
    assert parse_code("HK.00700") == (Market.HK, c2s.security.code)
    assert Market.HK.wire == c2s.security.market
    assert c2s.maxRetNum == 100
    assert c2s.HasField("header")
    assert c2s.header.securityFirm == 0
    # matches protocol.md section 1.1's sample header: 46 54 | c2 0b 00 00 | 00 | 00 | ...
    data = bytes.fromhex(info["hex"])
    assert data[:8] == b"FT\xc2\x0b\x00\x00\x00\x00"
    # and our own request with the same fields is byte-identical
    ours = qot_get_ticker_pb2.Request()
    ours.c2s.security.market = Market.HK.wire
    ours.c2s.security.code = "00700"
    ours.c2s.maxRetNum = 100
    ours.c2s.header.securityFirm = 0
    assert encode_frame(3010, frame.serial, ours.SerializeToString()) == data


# =============================================================================== aiofutu -> SDK


def test_sdk_parses_our_get_ticker_reply(sdk: dict[str, Any]) -> None:
    info = sdk["responses"]["get_ticker_ok"]
    assert info["err"] == "OK"
    assert info["proto_id"] == 3010
    assert info["serial"] == 4242
    assert info["ret_type"] == 0
    assert info["total_len"] == len(our_frames()["get_ticker_ok"])
    rt = info["get_rt_ticker"]
    assert rt["ret"] == 0
    # the stubbed context really went through get_rt_ticker's own packing (serial aside)
    request = bytes.fromhex(rt["request"])
    direct = bytes.fromhex(sdk["requests"]["get_ticker"]["hex"])
    assert request[:8] == direct[:8]
    assert request[12:] == direct[12:]

    ours = to_polars(tickers_from_pb(1, "00700", "TENCENT", GET_TICKER_TICKS))
    assert rt["columns"] == ours.columns
    assert len(rt["rows"]) == ours.height == len(GET_TICKER_TICKS)
    volume_at = ours.columns.index("volume")
    for sdk_values, our_values, pb in zip(rt["rows"], ours.rows(), GET_TICKER_TICKS, strict=True):
        sdk_row = list(sdk_values)
        our_row = list(our_values)
        # the SDK reports hpVolume unrounded when present; we round it into an Int64 column
        expected_volume = pb.hpVolume if pb.HasField("hpVolume") else pb.volume
        assert sdk_row[volume_at] == expected_volume
        assert our_row[volume_at] == round(expected_volume)
        del sdk_row[volume_at], our_row[volume_at]
        assert sdk_row == our_row
    # with one hpVolume in the reply, the SDK's whole volume column turns float
    assert rt["dtypes"]["volume"] == "float64"
    assert rt["dtypes"]["sequence"] == "int64"
    assert [r[rt["columns"].index("type")] for r in rt["rows"]] == [
        "AUTO_MATCH",
        "N/A",
        "REOPENINGP_RICED",
        "N/A",
        "OVERSEAS",
    ]
    assert [r[rt["columns"].index("ticker_direction")] for r in rt["rows"]] == [
        "BUY",
        "SELL",
        "NEUTRAL",
        "N/A",
        "N/A",
    ]


def test_sdk_fills_absent_name_with_na(sdk: dict[str, Any]) -> None:
    rt = sdk["responses"]["get_ticker_no_name"]["get_rt_ticker"]
    assert rt["ret"] == 0
    assert rt["rows"][0][:2] == ["HK.00700", "N/A"]
    assert rt["dtypes"]["volume"] == "int64"  # no hpVolume: the SDK keeps ints


def test_present_zero_hp_volume_matches_sdk(sdk: dict[str, Any]) -> None:
    rt = sdk["responses"]["get_ticker_hp_zero"]["get_rt_ticker"]
    volume_at = rt["columns"].index("volume")
    assert rt["rows"][0][volume_at] == 0.0  # the SDK: hpVolume present -> used, even when 0
    ours = to_polars(tickers_from_pb(1, "00700", "T", [HP_ZERO_TICK]))
    assert ours["volume"].to_list() == [0]


def test_sdk_reports_our_error_reply(sdk: dict[str, Any]) -> None:
    info = sdk["responses"]["get_ticker_error"]
    assert info["err"] == "OK"
    assert info["ret_type"] == -1
    rt = info["get_rt_ticker"]
    assert rt["ret"] == -1
    assert rt["error"] == "not subscribed: TICKER"


def test_sdk_parses_our_ticker_push(sdk: dict[str, Any]) -> None:
    info = sdk["responses"]["update_ticker"]
    assert info["err"] == "OK"
    assert info["proto_id"] == 3011
    push = info["push"]
    assert push["ret"] == 0
    ours = to_polars(tickers_from_pb(11, "AAPL", "Apple", PUSH_TICKS), push_data_type=True)
    assert push["columns"] == ours.columns
    assert push["columns"][-1] == "push_data_type"
    volume_at = ours.columns.index("volume")
    for sdk_values, our_values, pb in zip(push["rows"], ours.rows(), PUSH_TICKS, strict=True):
        sdk_row = list(sdk_values)
        our_row = list(our_values)
        expected_volume = pb.hpVolume if pb.HasField("hpVolume") else pb.volume
        assert sdk_row[volume_at] == expected_volume
        assert our_row[volume_at] == round(expected_volume)
        del sdk_row[volume_at], our_row[volume_at]
        assert sdk_row == our_row
    assert [r[-1] for r in push["rows"]] == ["REALTIME", "BYDISCONN", "CACHE", "N/A"]


def test_sdk_consumes_exactly_one_frame(sdk: dict[str, Any]) -> None:
    info = sdk["responses"]["two_frames"]
    assert info["err"] == "OK"
    assert info["total_len"] == len(our_frames()["two_frames"]) - 10


def test_sdk_quirks_we_do_not_share(sdk: dict[str, Any]) -> None:
    # The SDK waits for a 45th byte before parsing an empty-body frame (its `<= 44` check) ...
    assert sdk["responses"]["empty_body"]["err"] == "NOT_ENOUGH_DATA"
    assert sdk["responses"]["empty_body_plus_one"]["err"] == "OK"
    assert sdk["responses"]["empty_body_plus_one"]["total_len"] == 44
    decoder = FrameDecoder()
    decoder.feed(our_frames()["empty_body"])
    assert decoder.next_frame() == Frame(3001, 9, b"")  # ... we do not.
    # The SDK does not check the magic; we refuse the frame.
    assert sdk["responses"]["bad_magic"]["err"] == "OK"
    assert sdk["responses"]["bad_magic"]["ret_type"] == 0


# =============================================================================== shared tables


def test_code_parsing_agrees_with_sdk(sdk: dict[str, Any]) -> None:
    for code in CODES:
        ret, content = sdk["split_stock_str"][code]
        try:
            market, rest = parse_code(code)
        except InvalidCode:
            assert ret != 0, f"SDK accepts {code!r} but aiofutu refuses it"
        else:
            assert ret == 0, f"aiofutu accepts {code!r} but the SDK refuses it: {content}"
            assert [market.wire, rest] == content


def test_code_formatting_agrees_with_sdk(sdk: dict[str, Any]) -> None:
    for market, text in sdk["merge"].items():
        assert format_code(int(market), "00700") == text


def test_enum_strings_agree_with_sdk(sdk: dict[str, Any]) -> None:
    for wire, text in sdk["ticker_type"].items():
        assert TickerType.from_wire(int(wire)).value == text, wire
    for wire, text in sdk["ticker_direction"].items():
        assert TickerDirection.from_wire(int(wire)).value == text, wire
    for wire, text in sdk["push_data_type"].items():
        assert PushDataType.from_wire(int(wire)).value == text, wire
    assert {m.value: m.wire for m in SubType} == sdk["sub_type"]
    assert {m.value: m.wire for m in Market} == sdk["market"]
    assert {m.value: m.wire for m in Session} == sdk["session"]


def test_the_sdk_peer_ran_with_a_temporary_home(sdk: dict[str, Any]) -> None:
    # importing futu creates its log folder under $HOME: it must have gone to the temporary one
    assert (Path(sdk["_home"]) / ".com.futunn.FutuOpenD").is_dir()
    assert Path(sdk["_home"]) != Path.home()
