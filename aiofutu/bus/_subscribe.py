"""``aiofutu.bus.subscribe``: the checked entry point that builds a :class:`BusStream`.

Every argument is checked here, before anything connects, so a bad one is a
:class:`~aiofutu.ConfigurationError` at the call site rather than inside the stream's task.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..bridge import _subjects
from ..codes import parse_code
from ..errors import ConfigurationError
from ._consumer import BusOverflow, BusStream
from ._frames import BusFrameStream
from ._position import Since, check_durable, check_since

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from ..models import Ticker
    from ..streams import Gap

__all__ = ("subscribe", "ticker_frames")


def _as_tuple(value: Iterable[str] | str, what: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else list(value)
    if not items:
        raise ConfigurationError(f"{what} must name at least one")
    return tuple(dict.fromkeys(items))


def subscribe(
    nats: str | Any,
    codes: Iterable[str] | str,
    *,
    kinds: Iterable[str] | str = ("ticker",),
    since: Since = "new",
    durable: str | None = None,
    stream: str = "FUTU",
    buffer: int = 10_000,
    overflow: BusOverflow = "raise",
    on_gap: Callable[[Gap], None] | None = None,
    on_late_fill: Callable[[Ticker], None] | None = None,
    reorder_window: float = 0.5,
) -> BusStream:
    """Ticks of ``codes`` from the bus: ``async with aiofutu.bus.subscribe(url, codes) as t``.

    ``since``: ``"new"`` (only what is published from now on), ``"all"`` (everything the stream
    retains), a timezone-aware ``datetime`` or a ``timedelta`` (that long ago), or an ``int``
    stream sequence. ``durable`` names a durable consumer that a restarted service resumes
    (it resumes after the last message delivered to it). ``buffer``/``overflow`` work as for
    direct streams; ``reorder_window`` (seconds) is how long a tick after a hole waits for a
    late fill on HK securities (0: report the gap at once). asyncio only (nats-py).
    """
    code_list = _as_tuple(codes, "codes")
    for code in code_list:
        parse_code(code)
    kind_list = _as_tuple(kinds, "kinds")
    for kind in kind_list:
        if kind not in _subjects.KINDS:
            raise ConfigurationError(
                f"subscribe reads the tape kinds ({', '.join(_subjects.KINDS)}); for {kind!r} "
                "use bus.kind_stream(nats, codes, kind) or bus.quote_stream & co"
            )
    check_since(since, ("new", "all"))
    check_durable(durable)
    if type(buffer) is not int or buffer < 1:
        raise ConfigurationError(f"buffer must be a positive int, got {buffer!r}")
    if overflow not in ("drop_oldest", "raise", "block"):
        raise ConfigurationError(
            f"overflow must be 'drop_oldest', 'raise' or 'block', got {overflow!r}"
        )
    if not isinstance(reorder_window, (int, float)) or not (
        math.isfinite(reorder_window) and reorder_window >= 0
    ):
        raise ConfigurationError(f"reorder_window must be >= 0 seconds, got {reorder_window!r}")
    if not isinstance(stream, str) or not stream:
        raise ConfigurationError(f"stream must be a stream name, got {stream!r}")
    return BusStream(
        nats,
        code_list,
        kinds=kind_list,
        since=since,
        durable=durable,
        stream=stream,
        buffer=buffer,
        overflow=overflow,
        on_gap=on_gap,
        on_late_fill=on_late_fill,
        reorder_window=float(reorder_window),
    )


def ticker_frames(
    nats: str | Any,
    codes: Iterable[str] | str,
    *,
    max_rows: int = 10_000,
    max_latency: float = 0.1,
    buffer: int = 1_000_000,
    overflow: BusOverflow = "raise",
    on_gap: Callable[[Gap], None] | None = None,
    since: Since = "new",
    durable: str | None = None,
    stream: str = "FUTU",
    on_late_fill: Callable[[Ticker], None] | None = None,
    reorder_window: float = 0.5,
) -> BusFrameStream:
    """polars DataFrames of ticks from the bus, as ``client.ticker_frames(codes, ...)`` yields.

    ``async with aiofutu.bus.ticker_frames(url, "HK.00700") as frames: async for df in
    frames``: the same columns and dtypes as a direct client's frames, each of at most
    ``max_rows`` ticks, cut no later than ``max_latency`` seconds after its first tick, never
    across a hole. The other arguments are those of :func:`subscribe`. Needs polars.
    """
    ticks = subscribe(
        nats,
        codes,
        since=since,
        durable=durable,
        stream=stream,
        buffer=buffer,
        overflow=overflow,
        on_gap=on_gap,
        on_late_fill=on_late_fill,
        reorder_window=reorder_window,
    )
    return BusFrameStream(ticks, max_rows=max_rows, max_latency=max_latency)
