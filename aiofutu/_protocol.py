"""Sans-IO message layer: request bodies, reply decoding, retType mapping, serial numbers.

Knows which protobuf message each protocol id carries and turns OpenD's ``Response`` envelope
into either the ``s2c`` payload or a typed exception. No sockets, no event loop.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from google.protobuf.message import DecodeError, EncodeError
from google.protobuf.message import Message as PbMessage

from . import _kinds
from ._pb import (
    get_global_state_pb2,
    init_connect_pb2,
    keep_alive_pb2,
    notify_pb2,
    qot_common_pb2,
    qot_get_market_state_pb2,
    qot_get_security_snapshot_pb2,
    qot_get_static_info_pb2,
    qot_get_sub_info_pb2,
    qot_get_ticker_pb2,
    qot_reg_qot_push_pb2,
    qot_request_history_kl_pb2,
    qot_request_history_kl_quota_pb2,
    qot_sub_pb2,
)
from .enums import ProtoId
from .errors import LocalProtocolError, OpenDError, RemoteProtocolError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = (
    "CLIENT_VERSION",
    "RESPONSE_TYPES",
    "SerialCounter",
    "decode_response",
    "encode_message",
    "get_ticker_request",
    "init_connect_request",
    "keep_alive_request",
    "sub_request",
)

#: InitConnect ``clientVer`` (major * 100 + minor), as the official SDK sends it.
CLIENT_VERSION = 300
_U32_MAX = 0xFFFFFFFF

#: The ``Response`` message of each protocol id we understand: the session's own, then the
#: quote kinds' (derived from ``_kinds.KINDS``).
RESPONSE_TYPES: dict[int, type[PbMessage]] = {
    ProtoId.INIT_CONNECT: init_connect_pb2.Response,
    ProtoId.GET_GLOBAL_STATE: get_global_state_pb2.Response,
    ProtoId.NOTIFY: notify_pb2.Response,
    ProtoId.KEEP_ALIVE: keep_alive_pb2.Response,
    ProtoId.QOT_SUB: qot_sub_pb2.Response,
    ProtoId.QOT_REG_QOT_PUSH: qot_reg_qot_push_pb2.Response,
    ProtoId.QOT_GET_SUB_INFO: qot_get_sub_info_pb2.Response,
    **_kinds.response_types(),  # every quote kind's get and push
    # requests without a subscription
    ProtoId.QOT_REQUEST_HISTORY_KL: qot_request_history_kl_pb2.Response,
    ProtoId.QOT_REQUEST_HISTORY_KL_QUOTA: qot_request_history_kl_quota_pb2.Response,
    ProtoId.QOT_GET_MARKET_STATE: qot_get_market_state_pb2.Response,
    ProtoId.QOT_GET_STATIC_INFO: qot_get_static_info_pb2.Response,
    ProtoId.QOT_GET_SECURITY_SNAPSHOT: qot_get_security_snapshot_pb2.Response,
}


class SerialCounter:
    """Per-connection u32 serial numbers: 1, 2, ... 2**32-1, then 1 again (0 is never used)."""

    __slots__ = ("_last",)

    def __init__(self, start: int = 0) -> None:
        self._last = start

    def __call__(self) -> int:
        last = self._last + 1
        if last > _U32_MAX:
            last = 1
        self._last = last
        return last


class _Envelope(Protocol):
    retType: int
    retMsg: str
    errCode: int


R = TypeVar("R", bound=PbMessage)


def encode_message(message: PbMessage, proto_id: int = 0) -> bytes:
    """Serialize a request message, turning a missing required field into LocalProtocolError."""
    try:
        return message.SerializeToString()
    except EncodeError as exc:
        raise LocalProtocolError(
            f"cannot encode {type(message).__name__}: {exc}", proto_id=proto_id
        ) from None


def decode_response(response_type: type[R], body: bytes, proto_id: int, serial: int) -> R:
    """Parse a reply body; raise :class:`OpenDError` when retType is not 0.

    A body that does not parse is a recoverable :class:`RemoteProtocolError`: framing is intact.
    """
    response = response_type()
    try:
        response.ParseFromString(body)
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise RemoteProtocolError(
            f"reply body does not parse as {response_type.DESCRIPTOR.full_name}: {exc}",
            proto_id=proto_id,
            serial=serial,
            recoverable=True,
        ) from None
    check_ret(response, proto_id)
    return response


def successful_view(view_type: type[R], body: bytes) -> R | None:
    """``body`` parsed with a columnar view schema (``protos/*_columns.proto``) when it parses
    and says retType 0; None otherwise, so that the exact schema's :func:`decode_response`
    names the refusal or the parse failure with its typed error."""
    view = view_type()
    try:
        view.ParseFromString(body)
    except (DecodeError, RuntimeWarning, ValueError):
        return None
    env: Any = view
    return view if env.HasField("retType") and env.retType == 0 else None


def check_ret(response: Any, proto_id: int) -> None:
    """Raise :class:`OpenDError` for a non-zero retType (OpenD's message kept verbatim)."""
    env: _Envelope = response
    if env.retType != 0:
        raise OpenDError(
            proto_id=proto_id, ret_type=env.retType, err_code=env.errCode, ret_msg=env.retMsg
        )


def init_connect_request(
    client_id: str, *, recv_notify: bool = True, packet_enc_algo: int = -1
) -> init_connect_pb2.Request:
    req = init_connect_pb2.Request()
    c2s = req.c2s
    c2s.clientVer = CLIENT_VERSION
    c2s.clientID = client_id
    c2s.recvNotify = recv_notify
    c2s.packetEncAlgo = packet_enc_algo
    c2s.pushProtoFmt = 0
    c2s.programmingLanguage = "Python"
    return req


def keep_alive_request(now: float | None = None) -> keep_alive_pb2.Request:
    req = keep_alive_pb2.Request()
    req.c2s.time = int(time.time() if now is None else now)
    return req


def _security(target: qot_common_pb2.Security, market: int, code: str) -> None:
    target.market = market
    target.code = code


def sub_request(
    securities: Sequence[tuple[int, str]],
    sub_types: Sequence[int],
    *,
    subscribe: bool,
    register_push: bool,
    first_push: bool,
    extended_time: bool = False,
    session: int = 0,
    rehab_types: Sequence[int] = (),
) -> qot_sub_pb2.Request:
    req = qot_sub_pb2.Request()
    c2s = req.c2s
    for market, code in securities:
        _security(c2s.securityList.add(), market, code)
    c2s.subTypeList.extend(sub_types)
    c2s.regPushRehabTypeList.extend(rehab_types)  # K-line pushes; none: OpenD's forward only
    c2s.isSubOrUnSub = subscribe
    c2s.isRegOrUnRegPush = register_push
    c2s.isFirstPush = first_push
    c2s.isSubOrderBookDetail = False
    c2s.extendedTime = extended_time
    c2s.session = session
    c2s.header.securityFirm = 0
    return req


def unsub_all_request() -> qot_sub_pb2.Request:
    req = qot_sub_pb2.Request()
    req.c2s.isSubOrUnSub = False
    req.c2s.isUnsubAll = True
    req.c2s.header.securityFirm = 0
    return req


def sub_info_request(all_connections: bool) -> qot_get_sub_info_pb2.Request:
    req = qot_get_sub_info_pb2.Request()
    req.c2s.isReqAllConn = all_connections
    return req


def get_ticker_request(market: int, code: str, num: int) -> qot_get_ticker_pb2.Request:
    req = qot_get_ticker_pb2.Request()
    _security(req.c2s.security, market, code)
    req.c2s.maxRetNum = num
    req.c2s.header.securityFirm = 0
    return req


def global_state_request(user_id: int) -> get_global_state_pb2.Request:
    req = get_global_state_pb2.Request()
    req.c2s.userID = user_id
    return req
