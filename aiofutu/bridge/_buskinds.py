"""Every quote kind on the bus: one :class:`BusKind` per subject token, from the table of kinds.

A row of :data:`aiofutu._kinds.KINDS` names (``bus=``) a function here that returns its bus
kinds: ``ticker``; ``quote``; ``order_book`` and ``order_book_odd`` (the two sub types of the
order book row); ``broker``; ``kline_1m`` ... ``kline_year`` (one per K-line sub type; the
bars are OpenD's default, forward-adjusted); ``rt``. A bus kind says what the bridge and the
consumers need, so that neither branches on a kind's name:

* ``open``: the direct client's stream that feeds the bridge (states: every update, not
  conflated, as the parsed push messages; series: every change of the open item);
* ``message``: one item of that stream -> the OpenD protobuf message published as the body
  (``None``: nothing to publish, e.g. a series item's ``closed`` re-announcement, which a
  consumer derives itself);
* ``decode``: a body -> the model (the direct client's decoder of the same message);
* ``volatile``: fields left out of the message id's digest (they differ between bridges);
* ``chained``: the digest also covers the previous update of the subject (states, whose
  content may come back to an earlier value).

The ticker kind keeps its own tape path (``_subjects``: sequence headers, backfill), so its
``open``/``message`` are unused.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._pb import qot_common_pb2, qot_update_broker_pb2, qot_update_order_book_pb2
from ..codes import parse_code
from ..enums import Market, SubType
from ..errors import FutuError
from ..latest import LatestStream
from ..quotes._model import trusted
from ..quotes.basic import quote_from_pb
from ..quotes.broker import broker_queue_from_s2c
from ..quotes.kline import OPTIONAL_FIELDS, AuType, KLine, KLType, kline_from_pb
from ..quotes.orderbook import order_book_from_s2c
from ..quotes.rt import RTPoint, _point

if TYPE_CHECKING:
    from collections.abc import Callable

    from google.protobuf.message import Message

    from .._kinds import QuoteKind
    from ..client import Client

__all__ = ("BusKind", "bus_kinds", "digest", "kline_token")

_NONE: tuple[str, ...] = ()


class MalformedBody(ValueError):
    """A body that does not parse as the kind's message."""


@dataclass(frozen=True)
class BusKind:
    """One quote kind on the bus: a subject token and what it takes to publish and read it."""

    #: the subject token (``futu.<token>.<market>.<code>``) and the ``Futu-Kind`` header
    token: str
    #: the row of the table of kinds
    kind: QuoteKind
    #: (client, codes, buffer, overflow) -> the direct stream the bridge reads (async with)
    open: Callable[[Client, tuple[str, ...], int, str], Any] | None
    #: one item of that stream -> the OpenD protobuf message of the body (None: skip it)
    message: Callable[[Any], Message | None] | None
    #: body -> the model the consumers yield (MalformedBody when it does not parse)
    decode: Callable[[bytes], Any]
    #: fields left out of the message id's digest (OpenD-local, different between bridges)
    volatile: tuple[str, ...] = _NONE
    #: the digest also covers the previous update of the subject
    chained: bool = False
    #: the markets whose codes the kind serves (empty: every market)
    markets: tuple[Market, ...] = ()
    #: series: (code, item, closed) -> the update model the direct client's stream yields
    update: Callable[[str, Any, bool], Any] | None = None

    @property
    def shape(self) -> str:
        """The row's stream shape: ``"tape"``, ``"state"`` or ``"series"``."""
        return self.kind.shape

    def serves(self, code: str) -> bool:
        """Whether ``code`` has this kind (broker queues: HK only)."""
        return not self.markets or parse_code(code)[0] in self.markets


def digest(msg: Message, volatile: tuple[str, ...] = _NONE, previous: str = "") -> str:
    """12 hex digits of BLAKE2b over the message's deterministic bytes without ``volatile``
    fields, after ``previous`` (the previous update's digest, for chained kinds)."""
    if volatile:
        copy = type(msg)()
        copy.CopyFrom(msg)
        for name in volatile:
            copy.ClearField(name)
        msg = copy
    data = msg.SerializePartialToString(deterministic=True)
    return hashlib.blake2b(previous.encode() + data, digest_size=6).hexdigest()


def _parser(cls: Any, model: Callable[[Any], Any]) -> Callable[[bytes], Any]:
    def decode(body: bytes) -> Any:
        pb = cls()
        try:
            pb.ParseFromString(body)
        except Exception as exc:  # protobuf's DecodeError
            raise MalformedBody(f"{cls.DESCRIPTOR.name} body does not parse: {exc}") from None
        try:
            return model(pb)
        except (FutuError, ValueError, KeyError) as exc:
            raise MalformedBody(f"{cls.DESCRIPTOR.name} body is not valid: {exc}") from None

    return decode


# -- states: the direct state streams, not conflated, handing out the parsed messages ---------


class RawStateStream(LatestStream[Any]):
    """A state stream that yields the :class:`~aiofutu.latest.StateUpdate` (not the model)."""

    def _model(self, item: Any) -> Any:
        return item


def _state_opener(
    name: str, sub_type: SubType | None = None, variant: int = 0
) -> Callable[[Client, tuple[str, ...], int, str], Any]:
    def open_stream(client: Client, codes: tuple[str, ...], buffer: int, overflow: str) -> Any:
        client._check_open()
        return RawStateStream(
            client._attacher(name, sub_type),
            codes,
            kind=name,
            variant=variant,
            conflate=False,
            buffer=buffer,
            overflow=overflow,  # type: ignore[arg-type]
        )

    return open_stream


def _message(update: Any) -> Any:
    return update.message()


def _exact_s2c(response_type: Any) -> Callable[[Any], Any]:
    """The push's S2C in the exact schema, for a kind whose route keeps the columnar view
    and the push's bytes (order books, broker queues)."""

    def message(update: Any) -> Any:
        _view, body = update.message()
        return response_type.FromString(body).s2c

    return message


_book_message = _exact_s2c(qot_update_order_book_pb2.Response)
_broker_message = _exact_s2c(qot_update_broker_pb2.Response)


def quote_kinds(row: QuoteKind) -> tuple[BusKind, ...]:
    """``quote``: one ``Qot_Common.BasicQot`` per message."""
    return (
        BusKind(
            "quote",
            row,
            _state_opener("quote"),
            _message,
            _parser(qot_common_pb2.BasicQot, quote_from_pb),
            chained=True,
        ),
    )


def order_book_kinds(row: QuoteKind) -> tuple[BusKind, ...]:
    """``order_book`` and ``order_book_odd``: one ``Qot_UpdateOrderBook.S2C`` per message."""
    decode = _parser(qot_update_order_book_pb2.S2C, order_book_from_s2c)
    tokens = ("order_book", "order_book_odd")
    return tuple(
        BusKind(
            token,
            row,
            _state_opener("order_book", sub_type, variant),
            _book_message,
            decode,
            chained=True,
        )
        for variant, (token, sub_type) in enumerate(zip(tokens, row.sub_types, strict=True))
    )


def broker_kinds(row: QuoteKind) -> tuple[BusKind, ...]:
    """``broker`` (HK codes): one ``Qot_UpdateBroker.S2C`` per message."""
    return (
        BusKind(
            "broker",
            row,
            _state_opener("broker"),
            _broker_message,
            _parser(qot_update_broker_pb2.S2C, broker_queue_from_s2c),
            chained=True,
            markets=(Market.HK,),
        ),
    )


# -- series: the direct series streams; each change of the open item is one message -----------


def kline_to_pb(bar: KLine) -> qot_common_pb2.KLine:
    """A bar as ``Qot_Common.KLine`` (absent numbers stay absent; decodes to an equal bar)."""
    pb = qot_common_pb2.KLine(time=bar.time, isBlank=bar.is_blank)
    for attr, wire in OPTIONAL_FIELDS:
        value = getattr(bar, attr)
        if value is not None:
            setattr(pb, wire, value)
    _volume(pb, bar.volume)
    return pb


_RT_FIELDS = (
    ("price", "price"),
    ("last_close", "lastClosePrice"),
    ("avg_price", "avgPrice"),
    ("turnover", "turnover"),
    ("timestamp", "timestamp"),
)


def _volume(pb: Any, volume: float | None) -> None:
    if volume is None:
        return
    if volume == int(volume) and abs(volume) < 2**63:
        pb.volume = int(volume)
    else:
        pb.hpVolume = volume


def rt_to_pb(point: RTPoint) -> qot_common_pb2.TimeShare:
    """A minute as ``Qot_Common.TimeShare`` (decodes to an equal point)."""
    pb = qot_common_pb2.TimeShare(time=point.time, minute=point.minute, isBlank=point.is_blank)
    for attr, wire in _RT_FIELDS:
        value = getattr(point, attr)
        if value is not None:
            setattr(pb, wire, value)
    _volume(pb, point.volume)
    return pb


def _open_item(to_pb: Callable[[Any], Any], attr: str) -> Callable[[Any], Any]:
    def message(update: Any) -> Any:
        return None if update.closed else to_pb(getattr(update, attr))

    return message


def kline_token(kl_type: KLType) -> str:
    """The subject token of a bar period: ``K_1M`` -> ``kline_1m``, ``K_DAY`` -> ``kline_day``."""
    return f"kline_{kl_type.value[2:].lower()}"


def kline_kinds(row: QuoteKind) -> tuple[BusKind, ...]:
    """``kline_1m`` ... ``kline_year``: one ``Qot_Common.KLine`` (forward-adjusted) per message."""
    out = []
    for sub_type in row.sub_types:
        kl_type = KLType.coerce(sub_type.name)

        def open_stream(
            client: Client,
            codes: tuple[str, ...],
            buffer: int,
            overflow: str,
            kl_type: KLType = kl_type,
        ) -> Any:
            return client.kline_stream(
                *codes,
                ktype=kl_type,
                autype=AuType.QFQ,
                buffer=buffer,
                overflow=overflow,  # type: ignore[arg-type]
            )

        out.append(
            BusKind(
                kline_token(kl_type),
                row,
                open_stream,
                _open_item(kline_to_pb, "bar"),
                _parser(qot_common_pb2.KLine, kline_from_pb),
                update=functools.partial(_kline_update, kl_type),
            )
        )
    return tuple(out)


def rt_kinds(row: QuoteKind) -> tuple[BusKind, ...]:
    """``rt``: one ``Qot_Common.TimeShare`` per message."""

    def open_stream(client: Client, codes: tuple[str, ...], buffer: int, overflow: str) -> Any:
        return client.rt_stream(*codes, buffer=buffer, overflow=overflow)  # type: ignore[arg-type]

    return (
        BusKind(
            "rt",
            row,
            open_stream,
            _open_item(rt_to_pb, "point"),
            _parser(qot_common_pb2.TimeShare, _point),
            update=_rt_update,
        ),
    )


def ticker_kinds(row: QuoteKind) -> tuple[BusKind, ...]:
    """``ticker``: the tape path of :mod:`._subjects` (its body and msg id rules)."""
    from ._subjects import _Pb

    return (BusKind("ticker", row, None, None, _parser(_Pb, lambda pb: pb)),)


_BY_TOKEN: dict[str, BusKind] = {}


def bus_kinds() -> dict[str, BusKind]:
    """Every bus kind by token, in the order of the table of kinds."""
    if not _BY_TOKEN:
        from .._kinds import KINDS

        for row in KINDS:
            for bk in row.bus_kinds():
                _BY_TOKEN[bk.token] = bk
    return _BY_TOKEN


def _kline_update(kl_type: KLType, code: str, bar: KLine, closed: bool) -> Any:
    """The ``KLineUpdate`` of one bar, as the direct client's router builds it."""
    from ..quotes.series_stream import KLineUpdate

    fields = {"code": code, "kl_type": kl_type, "au_type": AuType.QFQ, "closed": closed}
    return trusted(KLineUpdate, {**fields, "bar": bar})


def _rt_update(code: str, point: RTPoint, closed: bool) -> Any:
    """The ``RTUpdate`` of one minute, as the direct client's router builds it."""
    from ..quotes.series_stream import RTUpdate

    return trusted(RTUpdate, {"code": code, "closed": closed, "point": point})
