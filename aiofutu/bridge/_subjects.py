"""The bus contract: subjects, headers, message ids and bodies (what other languages read).

Everything a message carries is defined here, once, and documented in docs/bridge.md. A quote
tape kind is one row of :data:`KINDS`: its subject token, how a model becomes a body and back,
and what identifies one item of its tape. The state and series kinds (quote, order books,
broker queues, K-lines, time share) are the bus kinds of :mod:`._buskinds`, with
:func:`item_headers` and :func:`read_item_headers` here.
"""

from __future__ import annotations

import hashlib
import struct
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from .._pb import qot_common_pb2
from ..codes import parse_code
from ..enums import PushDataType, TickerType
from ..errors import ConfigurationError, FutuError
from ..models import _DIRECTION_OF, _NA_DIRECTION, _PUSH_OF, _TYPE_OF, Ticker, _new

if TYPE_CHECKING:
    from collections.abc import Callable, Container

__all__ = (
    "HEADER_CODE",
    "HEADER_DIGEST",
    "HEADER_KIND",
    "HEADER_NAME",
    "HEADER_PUBLISHED",
    "HEADER_SEQUENCE",
    "KINDS",
    "MSG_ID",
    "SUBJECT_ROOT",
    "Kind",
    "MalformedMessage",
    "decode_token",
    "encode_token",
    "parse_subject",
    "subject",
    "subjects",
)

#: every subject of the bus starts with this token; a stream captures ``futu.>``
SUBJECT_ROOT = "futu"
HEADER_KIND = "Futu-Kind"
HEADER_CODE = "Futu-Code"
#: the sequence as an exact decimal integer (JSON numbers lose int64 precision in some languages)
HEADER_SEQUENCE = "Futu-Sequence"
#: when the bridge took the item from OpenD and published it: Unix seconds, decimal, 6 places
HEADER_PUBLISHED = "Futu-Published"
#: the security's name, percent-encoded UTF-8 (header values are ASCII)
HEADER_NAME = "Futu-Name"
#: state and series messages: the digest of the body's content (see docs/bridge.md)
HEADER_DIGEST = "Futu-Digest"
#: JetStream's de-duplication header
MSG_ID = "Nats-Msg-Id"

# Characters a subject token cannot hold ('.' separates tokens, '*' and '>' are wildcards,
# whitespace ends the subject) and '%' itself, so that the encoding is reversible.
_UNSAFE = frozenset(".*>%")


class MalformedMessage(ValueError):
    """A bus message that does not follow the contract (counted and skipped by consumers)."""


def encode_token(text: str) -> str:
    """A code as one subject token: percent-encoding of ``. * > %``, whitespace and non-ASCII.

    ``"00700"`` stays ``"00700"``; ``".DJI"`` (of ``US..DJI``) becomes ``"%2EDJI"``.
    """
    if not text:
        raise ConfigurationError("an empty code cannot be a subject token")
    if all(" " < ch < "\x7f" and ch not in _UNSAFE for ch in text):
        return text
    out = []
    for ch in text:
        if " " < ch < "\x7f" and ch not in _UNSAFE:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode())
    return "".join(out)


def decode_token(token: str) -> str:
    """The inverse of :func:`encode_token`."""
    return unquote(token, errors="strict")


def tokens() -> dict[str, Any]:
    """Every subject token of the bus (the bus kinds of the table of kinds), by token."""
    from ._buskinds import bus_kinds

    return bus_kinds()


def _token(kind: str) -> str:
    row = KINDS.get(kind)
    if row is not None:
        return row.token
    if kind not in tokens():
        raise ConfigurationError(f"unknown bus kind {kind!r}; use one of {', '.join(tokens())}")
    return kind


_subject_of: dict[tuple[str, str], str] = {}


def subject(kind: str, code: str) -> str:
    """``("ticker", "HK.00700")`` -> ``"futu.ticker.HK.00700"``; ``US..DJI`` -> ``...US.%2EDJI``."""
    found = _subject_of.get((kind, code))
    if found is not None:
        return found
    token = _token(kind)
    market, local = parse_code(code)
    text = f"{SUBJECT_ROOT}.{token}.{market.value}.{encode_token(local)}"
    if len(_subject_of) > 100_000:
        _subject_of.clear()
    _subject_of[kind, code] = text
    return text


def subjects(kinds: tuple[str, ...], codes: tuple[str, ...]) -> list[str]:
    """Every subject of ``kinds`` x ``codes``, in that order."""
    return [subject(kind, code) for kind in kinds for code in codes]


def parse_subject(text: str) -> tuple[str, str]:
    """``"futu.ticker.US.%2EDJI"`` -> ``("ticker", "US..DJI")``; MalformedMessage otherwise."""
    parts = text.split(".")
    if len(parts) != 4 or parts[0] != SUBJECT_ROOT or parts[1] not in tokens():
        raise MalformedMessage(f"not a bus subject: {text!r}")
    try:
        code = f"{parts[2]}.{decode_token(parts[3])}"
        parse_code(code)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedMessage(f"not a bus subject: {text!r} ({exc})") from None
    return parts[1], code


# -- the ticker row --------------------------------------------------------------------------

_Pb = qot_common_pb2.Ticker
_NA_TYPE = TickerType.NA
_NA_PUSH = PushDataType.NA
_pack = struct.Struct("<qddqdiidd").pack


def ticker_digest(tick: Ticker) -> str:
    """12 hex digits over the trade's own fields: not OpenD's receive time, name or push type.

    Two bridges (or one bridge before and after a restart, live or from a backfill) compute the
    same digest for the same trade; two trades that share a sequence (US sequences may carry
    only the second) differ in time, price, volume, turnover, direction or type.
    """
    hp = tick.hp_volume
    raw = _pack(
        tick.sequence,
        tick.price,
        tick.turnover,
        tick.volume,
        tick.timestamp,
        tick.ticker_direction.wire,
        tick.type.wire,
        float("nan") if hp is None else hp,
        float(tick.type_sign),
    )
    return hashlib.blake2b(raw + tick.time.encode(), digest_size=6).hexdigest()


def ticker_msg_id(tick: Ticker) -> str:
    """``HK.00700:<sequence>:<digest>``: the same for every copy of one trade, and only for it."""
    return f"{tick.code}:{tick.sequence}:{ticker_digest(tick)}"


def encode_ticker(tick: Ticker) -> bytes:
    """The body: OpenD's own ``Qot_Common.Ticker`` protobuf bytes (absent fields stay absent)."""
    pb = _Pb(
        time=tick.time,
        sequence=tick.sequence,
        dir=tick.ticker_direction.wire,
        price=tick.price,
        volume=tick.volume,
        turnover=tick.turnover,
    )
    if tick.recv_time:
        pb.recvTime = tick.recv_time
    if tick.type is not _NA_TYPE:
        pb.type = tick.type.wire
    if tick.type_sign:
        pb.typeSign = tick.type_sign
    if tick.push_data_type is not _NA_PUSH:
        pb.pushDataType = tick.push_data_type.wire
    if tick.timestamp:
        pb.timestamp = tick.timestamp
    if tick.hp_volume is not None:
        pb.hpVolume = tick.hp_volume
    return pb.SerializeToString()


_set_dict = Ticker.__mro__[1].__dict__["__dict__"].__set__  # pydantic's BaseModel


def decode_ticker(code: str, name: str, body: bytes) -> Ticker:
    """The model of one ticker body, the same as a direct client builds; MalformedMessage.

    ``code`` is a checked code (``HK.00700``). The model is assembled as the direct client's
    hot path does (``models.tickers_from_columns``): protobuf typed every value, absent
    optional fields read as the SDK's ``N/A`` / 0 / None.
    """
    pb = _Pb()
    try:
        pb.ParseFromString(body)
    except Exception as exc:  # protobuf's DecodeError
        raise MalformedMessage(f"ticker body does not parse: {exc}") from None
    has = pb.HasField
    if not (has("sequence") and has("time") and has("price")):
        raise MalformedMessage("ticker body lacks sequence, time or price")
    model = _new(Ticker)
    _set_dict(
        model,
        {
            "code": code,
            "name": name or "N/A",
            "sequence": pb.sequence,
            "time": pb.time,
            "price": pb.price,
            "volume": pb.volume,
            "turnover": pb.turnover,
            "ticker_direction": _DIRECTION_OF(pb.dir, _NA_DIRECTION),
            "type": _TYPE_OF(pb.type if has("type") else -1, _NA_TYPE),
            "push_data_type": _PUSH_OF(pb.pushDataType, _NA_PUSH),
            "timestamp": pb.timestamp,
            "recv_time": pb.recvTime,
            "type_sign": pb.typeSign,
            "hp_volume": pb.hpVolume if has("hpVolume") else None,
        },
    )
    return model


@dataclass(frozen=True)
class Kind:
    """One quote kind on the bus (a row of :data:`KINDS`)."""

    #: the subject token, ``futu.<token>.<market>.<code>``
    token: str
    #: model -> body
    encode: Callable[[Any], bytes]
    #: (code, name, body) -> model; raises MalformedMessage
    decode: Callable[[str, str, bytes], Any]
    #: model -> Nats-Msg-Id (derived from the item alone)
    msg_id: Callable[[Any], str]


KINDS: dict[str, Kind] = {
    "ticker": Kind("ticker", encode_ticker, decode_ticker, ticker_msg_id),
}


_quoted: dict[str, str] = {}


def headers(kind: str, tick: Ticker, published: float | None = None) -> dict[str, str]:
    """The headers of one message (see docs/bridge.md)."""
    name = tick.name
    quoted = _quoted.get(name)
    if quoted is None:
        if len(_quoted) > 10_000:
            _quoted.clear()
        quoted = _quoted[name] = quote(name, safe="")
    return {
        MSG_ID: KINDS[kind].msg_id(tick),
        HEADER_KIND: kind,
        HEADER_CODE: tick.code,
        HEADER_SEQUENCE: str(tick.sequence),
        HEADER_PUBLISHED: f"{time.time() if published is None else published:.6f}",
        HEADER_NAME: quoted,
    }


def _value(hdrs: dict[str, Any], key: str) -> str:
    """One header value: nats-py gives a str, or a list when fast_mail_parser is installed."""
    value = hdrs.get(key)
    if value is None:
        raise MalformedMessage(f"bad or missing bus header: {key!r} is missing")
    if isinstance(value, list):
        if not value:
            raise MalformedMessage(f"bad or missing bus header: {key!r} is empty")
        value = value[0]
    return str(value)


_unquoted: dict[str, str] = {}


def read_headers(
    hdrs: dict[str, Any] | None, codes: Container[str] | None = None
) -> tuple[str, str, int, str, float]:
    """(kind, code, sequence, name, published) from a message's headers; MalformedMessage.

    With ``codes``, the code must be one of them (already checked codes: not parsed again)."""
    if not hdrs:
        raise MalformedMessage("message without headers")
    get = hdrs.get
    kind = get(HEADER_KIND)
    code = get(HEADER_CODE)
    seq = get(HEADER_SEQUENCE)
    quoted = get(HEADER_NAME, "")
    stamp = get(HEADER_PUBLISHED, "0")
    if not (type(kind) is type(code) is type(seq) is type(quoted) is type(stamp) is str):
        # lists (fast_mail_parser installed) or a missing header: one value each, checked
        kind = _value(hdrs, HEADER_KIND)
        code = _value(hdrs, HEADER_CODE)
        seq = _value(hdrs, HEADER_SEQUENCE)
        quoted = _value(hdrs, HEADER_NAME) if HEADER_NAME in hdrs else ""
        stamp = _value(hdrs, HEADER_PUBLISHED) if HEADER_PUBLISHED in hdrs else "0"
    try:
        sequence = int(seq)
        published = float(stamp)
        name = _unquoted.get(quoted)
        if name is None:
            if len(_unquoted) > 10_000:
                _unquoted.clear()
            name = _unquoted[quoted] = unquote(quoted, errors="strict")
        if codes is None:
            parse_code(code)
        elif code not in codes:
            raise ValueError(f"{HEADER_CODE} {code!r} is not a code of this stream")
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        raise MalformedMessage(f"bad or missing bus header: {exc!r}") from None
    if kind not in KINDS:
        raise MalformedMessage(f"unknown kind {kind!r} in {HEADER_KIND}")
    return kind, code, sequence, name, published


def item_headers(
    token: str, code: str, msg_id: str, content: str = "", published: float | None = None
) -> dict[str, str]:
    """The headers of one state or series message (no sequence: see docs/bridge.md)."""
    out = {
        MSG_ID: msg_id,
        HEADER_KIND: token,
        HEADER_CODE: code,
        HEADER_PUBLISHED: f"{time.time() if published is None else published:.6f}",
    }
    if content:
        out[HEADER_DIGEST] = content
    return out


def read_item_headers(hdrs: dict[str, Any] | None, token: str) -> tuple[str, float]:
    """(code, published) of a state or series message of ``token``; MalformedMessage."""
    if not hdrs:
        raise MalformedMessage("message without headers")
    kind = _value(hdrs, HEADER_KIND)
    code = _value(hdrs, HEADER_CODE)
    if kind != token:
        raise MalformedMessage(f"{HEADER_KIND} {kind!r} on a {token} subject")
    try:
        parse_code(code)
        published = float(_value(hdrs, HEADER_PUBLISHED)) if HEADER_PUBLISHED in hdrs else 0.0
    except (ValueError, FutuError) as exc:
        raise MalformedMessage(f"bad bus header: {exc}") from None
    return code, published
