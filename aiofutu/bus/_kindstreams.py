"""The checked entry points of the state and series bus streams (named as the client's verbs).

``bus.quote_stream(url, codes)`` is ``client.quote_stream(*codes)`` read from the bus, and so
on; :func:`kind_stream` takes any state or series bus kind by its subject token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..bridge._buskinds import bus_kinds, kline_token
from ..codes import parse_code
from ..errors import ConfigurationError
from ..quotes.kline import check_kl_type
from ._items import BusItemStream
from ._position import ItemSince, check_durable, check_since

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..quotes.kline import KLType
    from ..streams import Overflow

__all__ = (
    "broker_stream",
    "kind_stream",
    "kline_stream",
    "order_book_stream",
    "quote_stream",
    "rt_stream",
)


def kind_stream(
    nats: str | Any,
    codes: Iterable[str] | str,
    kind: str,
    *,
    since: ItemSince = "last",
    durable: str | None = None,
    stream: str = "FUTU",
    conflate: bool = True,
    closed_only: bool = False,
    buffer: int = 10_000,
    overflow: Overflow = "raise",
) -> BusItemStream:
    """The items of one state or series bus kind (``"quote"``, ``"order_book_odd"``,
    ``"kline_5m"``, ``"rt"``, ...) of ``codes``: ``async with bus.kind_stream(...) as s``.

    ``since``: ``"last"`` (the newest item per security first, then every new one: the
    default, a fresh state at once), ``"new"``, ``"all"``, a timezone-aware ``datetime`` or a
    ``timedelta`` (that long ago), or an ``int`` stream sequence, as for :func:`subscribe`.
    ``durable`` names a durable consumer that a restarted service resumes after the last item
    it was done with (a state stream starts again from the newest state when nothing newer
    came). ``conflate`` (states), ``closed_only`` (series), ``buffer`` and ``overflow`` as for
    the direct streams.
    """
    items = [codes] if isinstance(codes, str) else list(codes)
    if not items:
        raise ConfigurationError("codes must name at least one")
    code_list = tuple(dict.fromkeys(items))
    found = bus_kinds().get(kind)
    if found is None or (found.update is None and found.shape != "state"):
        raise ConfigurationError(
            f"{kind!r} is not a state or series bus kind (tickers: bus.subscribe); kinds: "
            + ", ".join(k for k, v in bus_kinds().items() if v.shape != "tape")
        )
    for code in code_list:
        parse_code(code)
        if not found.serves(code):
            raise ConfigurationError(f"{code} has no {kind} (markets: {found.markets})")
    check_since(since, ("last", "new", "all"))
    check_durable(durable)
    if type(buffer) is not int or buffer < 1:
        raise ConfigurationError(f"buffer must be a positive int, got {buffer!r}")
    if overflow not in ("drop_oldest", "raise", "block"):
        raise ConfigurationError(
            f"overflow must be 'drop_oldest', 'raise' or 'block', got {overflow!r}"
        )
    if not isinstance(stream, str) or not stream:
        raise ConfigurationError(f"stream must be a stream name, got {stream!r}")
    return BusItemStream(
        nats,
        code_list,
        found,
        since=since,
        durable=durable,
        stream=stream,
        conflate=bool(conflate),
        closed_only=bool(closed_only),
        buffer=buffer,
        overflow=overflow,
    )


def quote_stream(nats: str | Any, codes: Iterable[str] | str, **options: Any) -> BusItemStream:
    """:class:`~aiofutu.Quote` states from the bus, as ``client.quote_stream`` yields them
    (conflated per security by default; options of :func:`kind_stream`)."""
    return kind_stream(nats, codes, "quote", **options)


def order_book_stream(
    nats: str | Any, codes: Iterable[str] | str, *, odd_lot: bool = False, **options: Any
) -> BusItemStream:
    """:class:`~aiofutu.OrderBook` states from the bus (``odd_lot=True``: the odd-lot book),
    as ``client.order_book_stream`` yields them; options of :func:`kind_stream`."""
    return kind_stream(nats, codes, "order_book_odd" if odd_lot else "order_book", **options)


def broker_stream(nats: str | Any, codes: Iterable[str] | str, **options: Any) -> BusItemStream:
    """:class:`~aiofutu.BrokerQueue` states of HK codes from the bus, as
    ``client.broker_stream`` yields them; options of :func:`kind_stream`."""
    return kind_stream(nats, codes, "broker", **options)


def kline_stream(
    nats: str | Any, codes: Iterable[str] | str, *, ktype: KLType | str = "K_1M", **options: Any
) -> BusItemStream:
    """:class:`~aiofutu.KLineUpdate` of forward-adjusted ``ktype`` bars from the bus, as
    ``client.kline_stream`` yields them (``closed_only``; options of :func:`kind_stream`)."""
    return kind_stream(nats, codes, kline_token(check_kl_type(ktype)), **options)


def rt_stream(nats: str | Any, codes: Iterable[str] | str, **options: Any) -> BusItemStream:
    """:class:`~aiofutu.RTUpdate` time-share minutes from the bus, as ``client.rt_stream``
    yields them (``closed_only``; options of :func:`kind_stream`)."""
    return kind_stream(nats, codes, "rt", **options)
