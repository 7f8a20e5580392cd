"""Sans-IO columnar decoding of ticker lists (Qot_UpdateTicker pushes, Qot_GetTicker replies).

Reading a protobuf message field by field costs an attribute lookup per field per tick, which
is most of a tick's cost in Python. The ``ticker_columns`` view schema (see its ``.proto``)
parses a reply, or many replies of one security joined back to back, straight into one list per
field. :func:`decode` checks the result is unambiguous and returns ``None`` when it is not, and
the caller then uses the exact schema (:func:`from_pb`): both give identical :class:`TickColumns`
(``tests/unit/test_columns.py`` checks this on generated messages).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._pb import ticker_columns_pb2

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ("TickColumns", "decode", "from_pb", "security_key")

_parse = ticker_columns_pb2.Response.FromString
#: ``retType = 0`` then the ``s2c`` tag: how every serializer starts a successful reply.
_OK_S2C = b"\x08\x00\x22"


class TickColumns:
    """Ticks of one security as parallel lists, oldest first.

    ``type`` holds the wire number or ``-1`` where the field was absent (the SDK's ``N/A``);
    ``hp_volume`` holds ``None`` where absent. A column that was absent on every tick is ``None``
    (for ``recv_time``, ``type_sign``, ``push_data_type`` and ``timestamp`` that reads as 0).
    """

    __slots__ = (
        "code",
        "dir",
        "hp_volume",
        "market",
        "n",
        "name",
        "price",
        "push_data_type",
        "recv_time",
        "sequence",
        "time",
        "timestamp",
        "turnover",
        "type",
        "type_sign",
        "volume",
    )

    def __init__(
        self,
        market: int,
        code: str,
        name: str,
        time: list[str],
        sequence: list[int],
        dir: list[int],
        price: list[float],
        volume: list[int],
        turnover: list[float],
        recv_time: list[float] | None = None,
        type: list[int] | None = None,
        type_sign: list[int] | None = None,
        push_data_type: list[int] | None = None,
        timestamp: list[float] | None = None,
        hp_volume: list[float | None] | None = None,
    ) -> None:
        self.market = market
        self.code = code
        self.name = name
        self.n = len(sequence)
        self.time = time
        self.sequence = sequence
        self.dir = dir
        self.price = price
        self.volume = volume
        self.turnover = turnover
        self.recv_time = recv_time
        self.type = type
        self.type_sign = type_sign
        self.push_data_type = push_data_type
        self.timestamp = timestamp
        self.hp_volume = hp_volume

    def take(self, keep: Sequence[int]) -> TickColumns:
        """The ticks at positions ``keep`` (used to drop re-sent ticks)."""
        return self._derive(len(keep), lambda col: [col[i] for i in keep])

    def slice(self, start: int, stop: int) -> TickColumns:
        """The ticks at positions ``start:stop`` (used to split a frame at ``max_rows``)."""
        return self._derive(len(range(self.n)[start:stop]), lambda col: col[start:stop])

    def _derive(self, n: int, pick: Callable[[list[Any]], list[Any]]) -> TickColumns:
        out = TickColumns.__new__(TickColumns)
        out.market = self.market
        out.code = self.code
        out.name = self.name
        out.n = n
        for name in _PER_TICK:
            col = getattr(self, name)
            setattr(out, name, None if col is None else pick(col))
        return out

    def extend(self, other: TickColumns) -> None:
        """Append ``other`` (same security) in place, keeping absent columns consistent."""
        n, m = self.n, other.n
        for name in _PER_TICK:
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine is None and theirs is None:
                continue
            if mine is None:
                mine = [_ABSENT[name]] * n
                setattr(self, name, mine)
            mine.extend([_ABSENT[name]] * m if theirs is None else theirs)
        self.n = n + m
        if other.name != "N/A":
            self.name = other.name

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TickColumns):
            return NotImplemented
        return (self.market, self.code, self.name) == (other.market, other.code, other.name) and [
            _dense(self, c) for c in _PER_TICK
        ] == [_dense(other, c) for c in _PER_TICK]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"TickColumns(market={self.market}, code={self.code!r}, n={self.n})"


_PER_TICK = (
    "time",
    "sequence",
    "dir",
    "price",
    "volume",
    "turnover",
    "recv_time",
    "type",
    "type_sign",
    "push_data_type",
    "timestamp",
    "hp_volume",
)
#: What an absent optional field reads as, per column.
_ABSENT: dict[str, Any] = {
    "recv_time": 0.0,
    "type": -1,
    "type_sign": 0,
    "push_data_type": 0,
    "timestamp": 0.0,
    "hp_volume": None,
}


def _dense(cols: TickColumns, name: str) -> list[Any]:
    col = getattr(cols, name)
    return [_ABSENT[name]] * cols.n if col is None else list(col)


def security_key(body: bytes) -> bytes | None:
    """The encoded ``Security`` of a successful 3010/3011 reply, found without parsing.

    It identifies the security of a push so that pushes can be grouped before any parse. Every
    protobuf serializer writes fields in number order, so the layout is fixed; ``None`` for
    anything else (the caller then parses that message on its own). The key is only a hint:
    :func:`decode` verifies the security of every message it merges.
    """
    if len(body) < 6 or body[:3] != _OK_S2C:
        return None
    i = 4
    if body[3] > 127:  # the s2c length is a varint: skip its continuation bytes
        i = 5
        if body[4] > 127:
            i = 6
            if body[5] > 127:
                return None
    if len(body) < i + 2 or body[i] != 0x0A:  # security: field 1, length-delimited
        return None
    size = body[i + 1]
    if size > 127:
        return None
    return body[i + 2 : i + 2 + size]


def decode(body: bytes, messages: int = 1) -> TickColumns | None:
    """Columns of ``messages`` successful replies of one security, joined in ``body``.

    ``None`` when the columnar view cannot be trusted: a reply that is not a plain success, more
    than one security, an optional field present on some ticks only, a repeated field, or bytes
    that do not parse. The caller then decodes each reply exactly (and reports what is wrong).
    """
    try:
        resp = _parse(body)
    except Exception:  # protobuf's DecodeError; the exact decoder will describe the problem
        return None
    rets = resp.retType
    if len(rets) != messages or any(rets) or resp.retMsg or resp.errCode:
        return None
    s2c = resp.s2c
    sec = s2c.security
    codes = sec.code[:]
    markets = sec.market[:]
    if len(codes) != messages or len(markets) != messages:
        return None
    code = codes[0]
    market = markets[0]
    if messages > 1 and (codes.count(code) != messages or markets.count(market) != messages):
        return None
    names = s2c.name[:]
    if names:
        if len(names) != messages or names.count(names[0]) != messages:
            return None
        name = names[0] or "N/A"
    else:
        name = "N/A"
    tl = s2c.tickerList
    seq = tl.sequence[:]
    n = len(seq)
    time = tl.time[:]
    dirs = tl.dir[:]
    price = tl.price[:]
    volume = tl.volume[:]
    turnover = tl.turnover[:]
    if not (len(time) == len(dirs) == len(price) == len(volume) == len(turnover) == n):
        return None
    recv = tl.recvTime[:] or None
    types = tl.type[:] or None
    sign = tl.typeSign[:] or None
    push = tl.pushDataType[:] or None
    stamp = tl.timestamp[:] or None
    hp: list[Any] | None = tl.hpVolume[:] or None
    for col in (recv, types, sign, push, stamp, hp):
        if col is not None and len(col) != n:
            return None
    return TickColumns(
        market, code, name, time, seq, dirs, price, volume, turnover, recv, types, sign, push,
        stamp, hp,
    )  # fmt: skip


def from_pb(market: int, code: str, name: str, ticker_list: Sequence[Any]) -> TickColumns:
    """Columns from exact-schema ``Qot_Common.Ticker`` messages (the fallback, and backfill)."""
    time: list[str] = []
    seq: list[int] = []
    dirs: list[int] = []
    price: list[float] = []
    volume: list[int] = []
    turnover: list[float] = []
    recv: list[float] = []
    types: list[int] = []
    sign: list[int] = []
    push: list[int] = []
    stamp: list[float] = []
    hp: list[float | None] = []
    has_type = has_hp = has_recv = has_sign = has_push = has_stamp = False
    for t in ticker_list:
        time.append(t.time)
        seq.append(t.sequence)
        dirs.append(t.dir)
        price.append(t.price)
        volume.append(t.volume)
        turnover.append(t.turnover)
        recv.append(t.recvTime)
        sign.append(t.typeSign)
        push.append(t.pushDataType)
        stamp.append(t.timestamp)
        has_recv = has_recv or t.HasField("recvTime")
        has_sign = has_sign or t.HasField("typeSign")
        has_push = has_push or t.HasField("pushDataType")
        has_stamp = has_stamp or t.HasField("timestamp")
        if t.HasField("type"):
            has_type = True
            types.append(t.type)
        else:
            types.append(-1)
        if t.HasField("hpVolume"):
            has_hp = True
            hp.append(t.hpVolume)
        else:
            hp.append(None)
    return TickColumns(
        market,
        code,
        name or "N/A",
        time,
        seq,
        dirs,
        price,
        volume,
        turnover,
        recv if has_recv else None,
        types if has_type else None,
        sign if has_sign else None,
        push if has_push else None,
        stamp if has_stamp else None,
        hp if has_hp else None,
    )
