"""The generated protobuf modules: up to date with ``protos/``, and field numbers as on the wire.

The expected schemas below are transcribed from the protocol fact sheet (protocol.md sections 2, 4,
5, 6), not from our ``.proto`` files, so a typo in a ``.proto`` shows up here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.descriptor import FieldDescriptor as FD

from aiofutu._pb import (
    common_pb2,
    get_global_state_pb2,
    init_connect_pb2,
    keep_alive_pb2,
    notify_pb2,
    qot_common_pb2,
    qot_get_basic_qot_pb2,
    qot_get_broker_pb2,
    qot_get_order_book_pb2,
    qot_get_sub_info_pb2,
    qot_get_ticker_pb2,
    qot_reg_qot_push_pb2,
    qot_sub_pb2,
    qot_update_basic_qot_pb2,
    qot_update_broker_pb2,
    qot_update_order_book_pb2,
    qot_update_ticker_pb2,
)

ROOT = Path(__file__).resolve().parents[2]

SCALARS = {
    "int32": FD.TYPE_INT32,
    "int64": FD.TYPE_INT64,
    "uint32": FD.TYPE_UINT32,
    "uint64": FD.TYPE_UINT64,
    "double": FD.TYPE_DOUBLE,
    "string": FD.TYPE_STRING,
    "bool": FD.TYPE_BOOL,
}

Spec = list[tuple[int, str, str, str]]  # (number, name, type, label)

SECURITY: Spec = [(1, "market", "int32", "req"), (2, "code", "string", "req")]
QOT_HEADER: Spec = [(1, "securityFirm", "int32", "opt")]
TICKER: Spec = [
    (1, "time", "string", "req"),
    (2, "sequence", "int64", "req"),
    (3, "dir", "int32", "req"),
    (4, "price", "double", "req"),
    (5, "volume", "int64", "req"),
    (6, "turnover", "double", "req"),
    (7, "recvTime", "double", "opt"),
    (8, "type", "int32", "opt"),
    (9, "typeSign", "int32", "opt"),
    (10, "pushDataType", "int32", "opt"),
    (11, "timestamp", "double", "opt"),
    (12, "hpVolume", "double", "opt"),
]
TICKER_S2C: Spec = [
    (1, "security", "Security", "req"),
    (2, "tickerList", "Ticker", "rep"),
    (3, "name", "string", "opt"),
]

# protocol-quotes.md sections 2, 3, 4 and 7
PRE_AFTER: Spec = [
    (1, "price", "double", "opt"),
    (2, "highPrice", "double", "opt"),
    (3, "lowPrice", "double", "opt"),
    (4, "volume", "int64", "opt"),
    (5, "turnover", "double", "opt"),
    (6, "changeVal", "double", "opt"),
    (7, "changeRate", "double", "opt"),
    (8, "amplitude", "double", "opt"),
]
BASIC_QOT: Spec = [
    (1, "security", "Security", "req"),
    (2, "isSuspended", "bool", "req"),
    (3, "listTime", "string", "req"),
    (4, "priceSpread", "double", "req"),
    (5, "updateTime", "string", "req"),
    (6, "highPrice", "double", "req"),
    (7, "openPrice", "double", "req"),
    (8, "lowPrice", "double", "req"),
    (9, "curPrice", "double", "req"),
    (10, "lastClosePrice", "double", "req"),
    (11, "volume", "int64", "req"),
    (12, "turnover", "double", "req"),
    (13, "turnoverRate", "double", "req"),
    (14, "amplitude", "double", "req"),
    (15, "darkStatus", "int32", "opt"),
    (16, "optionExData", "OptionBasicQotExData", "opt"),
    (17, "listTimestamp", "double", "opt"),
    (18, "updateTimestamp", "double", "opt"),
    (19, "preMarket", "PreAfterMarketData", "opt"),
    (20, "afterMarket", "PreAfterMarketData", "opt"),
    (21, "secStatus", "int32", "opt"),
    (22, "futureExData", "FutureBasicQotExData", "opt"),
    (23, "warrantExData", "WarrantBasicQotExData", "opt"),
    (24, "name", "string", "opt"),
    (25, "overnight", "PreAfterMarketData", "opt"),
    (26, "hpVolume", "double", "opt"),
]
OPTION_EX: Spec = [
    (1, "strikePrice", "double", "req"),
    (2, "contractSize", "int32", "req"),
    (3, "openInterest", "int32", "req"),
    (4, "impliedVolatility", "double", "req"),
    (5, "premium", "double", "req"),
    (6, "delta", "double", "req"),
    (7, "gamma", "double", "req"),
    (8, "vega", "double", "req"),
    (9, "theta", "double", "req"),
    (10, "rho", "double", "req"),
    (11, "netOpenInterest", "int32", "opt"),
    (12, "expiryDateDistance", "int32", "opt"),
    (13, "contractNominalValue", "double", "opt"),
    (14, "ownerLotMultiplier", "double", "opt"),
    (15, "optionAreaType", "int32", "opt"),
    (16, "contractMultiplier", "double", "opt"),
    (17, "contractSizeFloat", "double", "opt"),
    (18, "indexOptionType", "int32", "opt"),
]
ORDER_BOOK_S2C: Spec = [
    (1, "security", "Security", "req"),
    (2, "orderBookAskList", "OrderBook", "rep"),
    (3, "orderBookBidList", "OrderBook", "rep"),
    (4, "svrRecvTimeBid", "string", "opt"),
    (5, "svrRecvTimeBidTimestamp", "double", "opt"),
    (6, "svrRecvTimeAsk", "string", "opt"),
    (7, "svrRecvTimeAskTimestamp", "double", "opt"),
    (8, "name", "string", "opt"),
    (9, "orderBookType", "int32", "opt"),
]
BROKER_S2C: Spec = [
    (1, "security", "Security", "req"),
    (2, "brokerAskList", "Broker", "rep"),
    (3, "brokerBidList", "Broker", "rep"),
    (4, "name", "string", "opt"),
]
BASIC_QOT_S2C: Spec = [(1, "basicQotList", "BasicQot", "rep")]

SCHEMAS: dict[str, tuple[Any, Spec]] = {
    "Security": (qot_common_pb2.Security, SECURITY),
    "QotHeader": (qot_common_pb2.QotHeader, QOT_HEADER),
    "Ticker": (qot_common_pb2.Ticker, TICKER),
    "SubInfo": (
        qot_common_pb2.SubInfo,
        [(1, "subType", "int32", "req"), (2, "securityList", "Security", "rep")],
    ),
    "ConnSubInfo": (
        qot_common_pb2.ConnSubInfo,
        [
            (1, "subInfoList", "SubInfo", "rep"),
            (2, "usedQuota", "int32", "req"),
            (3, "isOwnConnData", "bool", "req"),
            (4, "securityFirm", "int32", "opt"),
            (5, "optionUsedQuota", "int32", "opt"),
        ],
    ),
    "InitConnect.C2S": (
        init_connect_pb2.C2S,
        [
            (1, "clientVer", "int32", "req"),
            (2, "clientID", "string", "req"),
            (3, "recvNotify", "bool", "opt"),
            (4, "packetEncAlgo", "int32", "opt"),
            (5, "pushProtoFmt", "int32", "opt"),
            (6, "programmingLanguage", "string", "opt"),
            (7, "aiType", "int32", "opt"),
        ],
    ),
    "InitConnect.S2C": (
        init_connect_pb2.S2C,
        [
            (1, "serverVer", "int32", "req"),
            (2, "loginUserID", "uint64", "req"),
            (3, "connID", "uint64", "req"),
            (4, "connAESKey", "string", "req"),
            (5, "keepAliveInterval", "int32", "req"),
            (6, "aesCBCiv", "string", "opt"),
            (7, "userAttribution", "int32", "opt"),
        ],
    ),
    "KeepAlive.C2S": (keep_alive_pb2.C2S, [(1, "time", "int64", "req")]),
    "KeepAlive.S2C": (keep_alive_pb2.S2C, [(1, "time", "int64", "req")]),
    "GetGlobalState.C2S": (get_global_state_pb2.C2S, [(1, "userID", "uint64", "req")]),
    "GetGlobalState.S2C": (
        get_global_state_pb2.S2C,
        [
            (1, "marketHK", "int32", "req"),
            (2, "marketUS", "int32", "req"),
            (3, "marketSH", "int32", "req"),
            (4, "marketSZ", "int32", "req"),
            (5, "marketHKFuture", "int32", "req"),
            (6, "qotLogined", "bool", "req"),
            (7, "trdLogined", "bool", "req"),
            (8, "serverVer", "int32", "req"),
            (9, "serverBuildNo", "int32", "req"),
            (10, "time", "int64", "req"),
            (11, "localTime", "double", "opt"),
            (12, "programStatus", "ProgramStatus", "opt"),
            (13, "qotSvrIpAddr", "string", "opt"),
            (14, "trdSvrIpAddr", "string", "opt"),
            (15, "marketUSFuture", "int32", "opt"),
            (16, "connID", "uint64", "opt"),
            (17, "marketSGFuture", "int32", "opt"),
            (18, "marketJPFuture", "int32", "opt"),
            (19, "marketSG", "int32", "opt"),
            (20, "marketMY", "int32", "opt"),
            (21, "marketJP", "int32", "opt"),
        ],
    ),
    "Common.ProgramStatus": (
        common_pb2.ProgramStatus,
        [(1, "type", "enum:ProgramStatusType", "req"), (2, "strExtDesc", "string", "opt")],
    ),
    "Qot_Sub.C2S": (
        qot_sub_pb2.C2S,
        [
            (1, "securityList", "Security", "rep"),
            (2, "subTypeList", "int32", "rep"),
            (3, "isSubOrUnSub", "bool", "req"),
            (4, "isRegOrUnRegPush", "bool", "opt"),
            (5, "regPushRehabTypeList", "int32", "rep"),
            (6, "isFirstPush", "bool", "opt"),
            (7, "isUnsubAll", "bool", "opt"),
            (8, "isSubOrderBookDetail", "bool", "opt"),
            (9, "extendedTime", "bool", "opt"),
            (10, "session", "int32", "opt"),
            (100, "header", "QotHeader", "opt"),
        ],
    ),
    "Qot_Sub.S2C": (qot_sub_pb2.S2C, []),
    "Qot_RegQotPush.C2S": (
        qot_reg_qot_push_pb2.C2S,
        [
            (1, "securityList", "Security", "rep"),
            (2, "subTypeList", "int32", "rep"),
            (3, "rehabTypeList", "int32", "rep"),
            (4, "isRegOrUnReg", "bool", "req"),
            (5, "isFirstPush", "bool", "opt"),
            (100, "header", "QotHeader", "opt"),
        ],
    ),
    "Qot_RegQotPush.S2C": (qot_reg_qot_push_pb2.S2C, []),
    "Qot_GetSubInfo.C2S": (
        qot_get_sub_info_pb2.C2S,
        [(1, "isReqAllConn", "bool", "opt"), (100, "header", "QotHeader", "opt")],
    ),
    "Qot_GetSubInfo.S2C": (
        qot_get_sub_info_pb2.S2C,
        [
            (1, "connSubInfoList", "ConnSubInfo", "rep"),
            (2, "totalUsedQuota", "int32", "req"),
            (3, "remainQuota", "int32", "req"),
            (4, "optionUsedQuota", "int32", "opt"),
            (5, "optionRemainQuota", "int32", "opt"),
        ],
    ),
    "Qot_GetTicker.C2S": (
        qot_get_ticker_pb2.C2S,
        [
            (1, "security", "Security", "req"),
            (2, "maxRetNum", "int32", "req"),
            (100, "header", "QotHeader", "opt"),
        ],
    ),
    "Qot_GetTicker.S2C": (qot_get_ticker_pb2.S2C, TICKER_S2C),
    "Qot_UpdateTicker.S2C": (qot_update_ticker_pb2.S2C, TICKER_S2C),
    "PreAfterMarketData": (qot_common_pb2.PreAfterMarketData, PRE_AFTER),
    "BasicQot": (qot_common_pb2.BasicQot, BASIC_QOT),
    "OptionBasicQotExData": (qot_common_pb2.OptionBasicQotExData, OPTION_EX),
    "FutureBasicQotExData": (
        qot_common_pb2.FutureBasicQotExData,
        [
            (1, "lastSettlePrice", "double", "req"),
            (2, "position", "int32", "req"),
            (3, "positionChange", "int32", "req"),
            (4, "expiryDateDistance", "int32", "opt"),
        ],
    ),
    "WarrantBasicQotExData": (
        qot_common_pb2.WarrantBasicQotExData,
        [
            (1, "delta", "double", "opt"),
            (2, "impliedVolatility", "double", "opt"),
            (3, "premium", "double", "req"),
        ],
    ),
    "OrderBook": (
        qot_common_pb2.OrderBook,
        [
            (1, "price", "double", "req"),
            (2, "volume", "int64", "req"),
            (3, "orederCount", "int32", "req"),
            (4, "detailList", "OrderBookDetail", "rep"),
            (5, "hpVolume", "double", "opt"),
        ],
    ),
    "OrderBookDetail": (
        qot_common_pb2.OrderBookDetail,
        [(1, "orderID", "int64", "req"), (2, "volume", "int64", "req")],
    ),
    "Broker": (
        qot_common_pb2.Broker,
        [
            (1, "id", "int64", "req"),
            (2, "name", "string", "req"),
            (3, "pos", "int32", "req"),
            (4, "orderID", "int64", "opt"),
            (5, "volume", "int64", "opt"),
        ],
    ),
    "Qot_GetBasicQot.C2S": (
        qot_get_basic_qot_pb2.C2S,
        [(1, "securityList", "Security", "rep"), (100, "header", "QotHeader", "opt")],
    ),
    "Qot_GetBasicQot.S2C": (qot_get_basic_qot_pb2.S2C, BASIC_QOT_S2C),
    "Qot_UpdateBasicQot.S2C": (qot_update_basic_qot_pb2.S2C, BASIC_QOT_S2C),
    "Qot_GetOrderBook.C2S": (
        qot_get_order_book_pb2.C2S,
        [
            (1, "security", "Security", "req"),
            (2, "num", "int32", "req"),
            (4, "orderBookType", "int32", "opt"),
            (100, "header", "QotHeader", "opt"),
        ],
    ),
    "Qot_GetOrderBook.S2C": (qot_get_order_book_pb2.S2C, ORDER_BOOK_S2C),
    "Qot_UpdateOrderBook.S2C": (qot_update_order_book_pb2.S2C, ORDER_BOOK_S2C),
    "Qot_GetBroker.C2S": (
        qot_get_broker_pb2.C2S,
        [(1, "security", "Security", "req"), (100, "header", "QotHeader", "opt")],
    ),
    "Qot_GetBroker.S2C": (qot_get_broker_pb2.S2C, BROKER_S2C),
    "Qot_UpdateBroker.S2C": (qot_update_broker_pb2.S2C, BROKER_S2C),
    "Notify.S2C": (
        notify_pb2.S2C,
        [
            (1, "type", "int32", "req"),
            (2, "event", "GtwEvent", "opt"),
            (3, "programStatus", "ProgramStatus", "opt"),
            (4, "connectStatus", "ConnectStatus", "opt"),
            (5, "qotRight", "QotRight", "opt"),
            (6, "apiLevel", "APILevel", "opt"),
            (7, "apiQuota", "APIQuota", "opt"),
            (8, "usedQuota", "UsedQuota", "opt"),
        ],
    ),
}

REQUEST_RESPONSE = [
    init_connect_pb2,
    keep_alive_pb2,
    get_global_state_pb2,
    qot_sub_pb2,
    qot_reg_qot_push_pb2,
    qot_get_sub_info_pb2,
    qot_get_ticker_pb2,
    qot_get_basic_qot_pb2,
    qot_get_order_book_pb2,
    qot_get_broker_pb2,
]
PUSH_ONLY = [
    qot_update_ticker_pb2,
    notify_pb2,
    qot_update_basic_qot_pb2,
    qot_update_order_book_pb2,
    qot_update_broker_pb2,
]


def _label(field: Any) -> str:
    if field.is_repeated:
        return "rep"
    return "req" if field.is_required else "opt"


def _type(field: Any) -> str:
    if field.type == FD.TYPE_MESSAGE:
        return str(field.message_type.name)
    if field.type == FD.TYPE_ENUM:
        return f"enum:{field.enum_type.name}"
    names = {v: k for k, v in SCALARS.items()}
    return names.get(field.type, f"?{field.type}")


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_message_schema(name: str) -> None:
    message, spec = SCHEMAS[name]
    actual = sorted((f.number, f.name, _type(f), _label(f)) for f in message.DESCRIPTOR.fields)
    assert actual == sorted(spec)


def test_ticker_fields_one_to_twelve() -> None:
    fields = qot_common_pb2.Ticker.DESCRIPTOR.fields_by_number
    assert sorted(fields) == list(range(1, 13))
    assert fields[12].name == "hpVolume"
    assert fields[12].type == FD.TYPE_DOUBLE
    assert fields[2].type == FD.TYPE_INT64  # sequence: 64-bit
    assert fields[5].type == FD.TYPE_INT64  # volume: 64-bit


def test_get_ticker_name_comes_after_ticker_list() -> None:
    fields = qot_get_ticker_pb2.S2C.DESCRIPTOR.fields_by_name
    assert fields["tickerList"].number == 2
    assert fields["name"].number == 3


def test_qot_sub_header_is_field_100() -> None:
    assert qot_sub_pb2.C2S.DESCRIPTOR.fields_by_name["header"].number == 100
    # the SDK sends this exact tag for header{securityFirm: 0}: field 100, wire type 2
    c2s = qot_sub_pb2.C2S(isSubOrUnSub=True)
    c2s.header.securityFirm = 0
    assert c2s.SerializeToString().endswith(b"\xa2\x06\x02\x08\x00")


def test_repeated_int32_is_not_packed() -> None:
    # proto2 default; the SDK sends subTypeList unpacked, one tag per element
    field = qot_sub_pb2.C2S.DESCRIPTOR.fields_by_name["subTypeList"]
    assert not field.is_packed
    c2s = qot_sub_pb2.C2S(isSubOrUnSub=True, subTypeList=[4, 1])
    assert c2s.SerializeToString() == b"\x10\x04\x10\x01\x18\x01"


@pytest.mark.parametrize("module", REQUEST_RESPONSE + PUSH_ONLY, ids=lambda m: m.__name__)
def test_response_envelope(module: Any) -> None:
    fields = module.Response.DESCRIPTOR.fields_by_number
    assert [(n, fields[n].name, _type(fields[n]), _label(fields[n])) for n in sorted(fields)] == [
        (1, "retType", "int32", "req"),
        (2, "retMsg", "string", "opt"),
        (3, "errCode", "int32", "opt"),
        (4, "s2c", "S2C", "opt"),
    ]
    assert fields[1].default_value == -400
    rsp = module.Response()
    assert rsp.retType == -400
    assert not rsp.HasField("retType")
    # an empty body parses to "unknown result", as OpenD's schema says
    assert module.Response.FromString(b"").retType == -400


@pytest.mark.parametrize("module", REQUEST_RESPONSE, ids=lambda m: m.__name__)
def test_request_envelope(module: Any) -> None:
    fields = module.Request.DESCRIPTOR.fields_by_number
    assert list(fields) == [1]
    assert fields[1].name == "c2s"
    assert fields[1].is_required
    assert fields[1].message_type is module.C2S.DESCRIPTOR


@pytest.mark.parametrize("module", PUSH_ONLY, ids=lambda m: m.__name__)
def test_push_protocols_have_no_request(module: Any) -> None:
    assert "Request" not in module.DESCRIPTOR.message_types_by_name
    assert "C2S" not in module.DESCRIPTOR.message_types_by_name


def test_packages_do_not_collide_with_the_sdk() -> None:
    # The SDK registers e.g. "Qot_Common.Ticker" in the default descriptor pool; our names are
    # namespaced so both can be imported into one process (benchmarks, wire tests).
    for module in [common_pb2, qot_common_pb2, *REQUEST_RESPONSE, *PUSH_ONLY]:
        assert module.DESCRIPTOR.package.startswith("aiofutu."), module.__name__


def test_round_trip_get_ticker_response() -> None:
    rsp = qot_get_ticker_pb2.Response(retType=0)
    rsp.s2c.security.market = 1
    rsp.s2c.security.code = "00700"
    rsp.s2c.name = "TENCENT"
    tick = rsp.s2c.tickerList.add()
    tick.time, tick.sequence, tick.dir = "t", 2**62, 1
    tick.price, tick.volume, tick.turnover = 1.5, 2, 3.0
    data = rsp.SerializeToString()
    # name (#3, tag 0x1a) follows the ticker list (#2, tag 0x12) on the wire
    s2c_bytes = rsp.s2c.SerializeToString()
    assert s2c_bytes.index(b"\x1a\x07TENCENT") > s2c_bytes.index(b"\x12")
    assert qot_update_ticker_pb2.Response.FromString(data).s2c.name == "TENCENT"


def test_basic_qot_name_is_field_24_and_contract_size_float_17() -> None:
    # declared out of number order in OpenD's schema; hand-built fixtures must go by number
    fields = qot_common_pb2.BasicQot.DESCRIPTOR.fields_by_name
    assert fields["name"].number == 24
    ex = qot_common_pb2.OptionBasicQotExData.DESCRIPTOR.fields_by_name
    assert ex["contractSizeFloat"].number == 17


def test_order_book_c2s_has_no_field_3() -> None:
    assert 3 not in qot_get_order_book_pb2.C2S.DESCRIPTOR.fields_by_number


# --------------------------------------------------------------------------- regeneration


def _gen_protos(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(root / "tools" / "gen_protos.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=root,
    )


def test_generated_modules_are_up_to_date() -> None:
    pytest.importorskip("grpc_tools")
    proc = _gen_protos(ROOT)
    assert proc.returncode == 0, proc.stderr


def test_check_mode_detects_a_stale_module(tmp_path: Path) -> None:
    # The --check above is only meaningful if it can fail: run it on a copy with one edit.
    pytest.importorskip("grpc_tools")
    shutil.copytree(ROOT / "tools", tmp_path / "tools")
    shutil.copytree(ROOT / "protos", tmp_path / "protos")
    shutil.copytree(ROOT / "aiofutu" / "_pb", tmp_path / "aiofutu" / "_pb")
    assert _gen_protos(tmp_path).returncode == 0
    stale = tmp_path / "aiofutu" / "_pb" / "qot_common_pb2.pyi"
    stale.write_text(stale.read_text() + "# hand edit\n")
    proc = _gen_protos(tmp_path)
    assert proc.returncode == 1
    assert "qot_common_pb2.pyi" in proc.stderr
