"""Sans-IO codec for the packets of OpenD's WebSocket gateway (the npm ``futu-api`` framing).

Each binary WebSocket message carries exactly one packet: a big-endian header, then a protobuf
body that runs to the end of the message (no length field, no SHA1, no encryption). The header
differs by direction:

* client to server, 20 bytes: ``ft-v1.0\\0``, cmd (u32), section (u64);
* server to client, 44 bytes: the same three fields, then error (i32) and errmsg (20 bytes, NUL
  padded, ASCII only: the SDK reads it as 20 UTF-8 characters).

cmd 1 is Init (``InitWebSocket``, in place of InitConnect); any other cmd is a protocol id, as on
TCP. Replies echo the request's section; pushes use a section no request is waiting on (0 here).
Nothing in this module touches a socket or an event loop, so the simulator's gateway and a client
share it: WebSocket messages in, :class:`WsRequest` / :class:`WsReply` out, and back.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import NamedTuple

from ._pb import init_websocket_pb2
from .errors import LocalProtocolError, RemoteProtocolError

__all__ = (
    "CMD_INIT",
    "DEFAULT_MAX_MESSAGE",
    "ERRMSG_SIZE",
    "MIN_PROTO_ID",
    "REPLY_HEADER_SIZE",
    "REQUEST_HEADER_SIZE",
    "WS_MAGIC",
    "WsReply",
    "WsRequest",
    "ascii_errmsg",
    "decode_init_request",
    "decode_reply",
    "decode_request",
    "encode_init_request",
    "encode_reply",
    "encode_request",
    "key_matches",
    "websocket_key_digest",
)

#: The header's sign: ``ft-v1.0`` and one NUL byte.
WS_MAGIC = b"ft-v1.0\x00"
_SIGN = WS_MAGIC[:7]
#: Init, the first request of every WebSocket connection (``InitWebSocket``).
CMD_INIT = 1
#: Any other cmd a client may send is a protocol id (1001 InitConnect, 3001 Qot_Sub, ...).
MIN_PROTO_ID = 1000
ERRMSG_SIZE = 20
_REQUEST = struct.Struct(">8sIQ")
_REPLY = struct.Struct(">8sIQi20s")
REQUEST_HEADER_SIZE = _REQUEST.size  # 20
REPLY_HEADER_SIZE = _REPLY.size  # 44
#: Largest message the decoders take by default (the TCP codec's body limit).
DEFAULT_MAX_MESSAGE = 64 * 1024 * 1024
_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF
_I32 = (-0x80000000, 0x7FFFFFFF)


class WsRequest(NamedTuple):
    """One client-to-server packet."""

    cmd: int
    section: int
    body: bytes


class WsReply(NamedTuple):
    """One server-to-client packet: a reply (its request's section) or a push."""

    cmd: int
    section: int
    body: bytes
    error: int = 0
    errmsg: str = ""


def encode_request(cmd: int, section: int, body: bytes = b"") -> bytes:
    """A client-to-server message: the 20-byte header, then ``body``."""
    if cmd != CMD_INIT and not MIN_PROTO_ID <= cmd <= _U32:
        raise LocalProtocolError(
            f"cmd must be 1 (Init) or a protocol id >= {MIN_PROTO_ID}, got {cmd}", proto_id=cmd
        )
    if not 0 <= section <= _U64:
        raise LocalProtocolError("section must fit in an unsigned 64-bit integer", proto_id=cmd)
    return _REQUEST.pack(WS_MAGIC, cmd, section) + body


def decode_request(
    message: bytes | bytearray | memoryview, *, max_size: int = DEFAULT_MAX_MESSAGE
) -> WsRequest:
    """Parse a client-to-server message.

    Raises a recoverable :class:`RemoteProtocolError` (each WebSocket message is a packet, so
    the next one is unaffected) for a message that is too short or too large, a wrong sign, or
    a cmd that is neither Init nor a protocol id. ``proto_id`` and ``serial`` carry the cmd and
    section once the header could be read, so the error can be answered.
    """
    size = len(message)
    if size > max_size:
        raise RemoteProtocolError(
            f"message of {size} bytes exceeds the limit of {max_size}", recoverable=True
        )
    if size < REQUEST_HEADER_SIZE:
        raise RemoteProtocolError(
            f"message of {size} bytes is shorter than the {REQUEST_HEADER_SIZE}-byte header",
            recoverable=True,
        )
    sign, cmd, section = _REQUEST.unpack_from(message)
    if sign != WS_MAGIC:
        raise RemoteProtocolError(
            f"bad sign {bytes(sign)!r} (expected {WS_MAGIC!r})",
            proto_id=cmd,
            serial=section,
            recoverable=True,
        )
    if cmd != CMD_INIT and cmd < MIN_PROTO_ID:
        raise RemoteProtocolError(
            f"unknown cmd {cmd} (1 = Init, else a protocol id >= {MIN_PROTO_ID})",
            proto_id=cmd,
            serial=section,
            recoverable=True,
        )
    return WsRequest(cmd, section, bytes(message[REQUEST_HEADER_SIZE:]))


def ascii_errmsg(text: str) -> str:
    """``text`` as the header's errmsg can carry it: ASCII (others become ``?``), 20 bytes."""
    return text.encode("ascii", "replace").decode("ascii")[:ERRMSG_SIZE]


def encode_reply(cmd: int, section: int, body: bytes, *, error: int = 0, errmsg: str = "") -> bytes:
    """A server-to-client message: the 44-byte header, then ``body``.

    ``errmsg`` must be ASCII and at most 20 bytes (:func:`ascii_errmsg` makes it so): the SDK
    reads that field as 20 characters, and a multi-byte one would shift the body.
    """
    if not (0 <= cmd <= _U32 and 0 <= section <= _U64):
        raise LocalProtocolError(
            "cmd and section must fit in unsigned 32- and 64-bit integers", proto_id=cmd
        )
    if not _I32[0] <= error <= _I32[1]:
        raise LocalProtocolError("error must fit in a signed 32-bit integer", proto_id=cmd)
    try:
        raw = errmsg.encode("ascii")
    except UnicodeEncodeError:
        raise LocalProtocolError(f"errmsg must be ASCII, got {errmsg!r}", proto_id=cmd) from None
    if len(raw) > ERRMSG_SIZE:
        raise LocalProtocolError(f"errmsg is longer than {ERRMSG_SIZE} bytes", proto_id=cmd)
    return _REPLY.pack(WS_MAGIC, cmd, section, error, raw) + body


def decode_reply(
    message: bytes | bytearray | memoryview, *, max_size: int = DEFAULT_MAX_MESSAGE
) -> WsReply:
    """Parse a server-to-client message (for a client), with the SDK's rules.

    The sign must contain ``ft-v1.0``; NUL bytes are stripped from errmsg. A message shorter
    than 44 bytes, or larger than ``max_size``, raises a recoverable :class:`RemoteProtocolError`.
    """
    size = len(message)
    if size > max_size:
        raise RemoteProtocolError(
            f"message of {size} bytes exceeds the limit of {max_size}", recoverable=True
        )
    if size < REPLY_HEADER_SIZE:
        raise RemoteProtocolError(
            f"message of {size} bytes is shorter than the {REPLY_HEADER_SIZE}-byte header",
            recoverable=True,
        )
    sign, cmd, section, error, raw = _REPLY.unpack_from(message)
    if _SIGN not in sign:
        raise RemoteProtocolError(
            f"bad sign {bytes(sign)!r} (expected {WS_MAGIC!r})",
            proto_id=cmd,
            serial=section,
            recoverable=True,
        )
    errmsg = raw.replace(b"\x00", b"").decode("utf-8", "replace")
    return WsReply(cmd, section, bytes(message[REPLY_HEADER_SIZE:]), error, errmsg)


# ---- Init and the websocket key ------------------------------------------------------------


def websocket_key_digest(key: str | None) -> str:
    """What Init's ``websocketKey`` carries: the lowercase hex MD5 of the key; ``""`` for none.

    OpenD is configured with this digest (``websocket_key_md5``), never with the key itself.
    """
    if not key:
        return ""
    return hashlib.md5(key.encode(), usedforsecurity=False).hexdigest()


def key_matches(received: str, digest: str) -> bool:
    """True when Init's ``websocketKey`` is ``digest`` (hex, compared without regard to case)."""
    return hmac.compare_digest(received.lower().encode(), digest.lower().encode())


def encode_init_request(
    key: str | None, section: int, *, programming_language: str = "Python"
) -> bytes:
    """The Init message a client sends first: ``websocketKey`` is the key's MD5 hex digest."""
    c2s = init_websocket_pb2.C2S(
        websocketKey=websocket_key_digest(key), programmingLanguage=programming_language
    )
    body = init_websocket_pb2.Request(c2s=c2s).SerializeToString()
    return encode_request(CMD_INIT, section, body)


def decode_init_request(request: WsRequest) -> init_websocket_pb2.C2S:
    """The ``c2s`` of an Init request (empty when absent, as every field is optional).

    A body that is not an ``InitWebSocket.Request`` raises a recoverable
    :class:`RemoteProtocolError`.
    """
    message = init_websocket_pb2.Request()
    try:
        message.ParseFromString(request.body)
    except Exception as exc:  # protobuf's DecodeError, or worse on hostile bytes
        raise RemoteProtocolError(
            f"the Init body is not an InitWebSocket.Request: {exc}",
            proto_id=request.cmd,
            serial=request.section,
            recoverable=True,
        ) from None
    return message.c2s
