"""What the three state kinds' verbs share: the request round trip, and opening a stream."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import _protocol
from ..errors import SubscriptionRequired
from ..latest import LatestStream
from ._core import as_codes, check_timeout

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..enums import SubType
    from ..streams import Overflow
    from ._core import Core

__all__ = ("check_subscribed", "fetch", "open_stream")

#: encoded requests by key: the same bytes every time (bounded)
_BODIES: dict[tuple[Any, ...], bytes] = {}


def cached_body(key: tuple[Any, ...], build: Any) -> bytes:
    """The encoded request for ``key``, built by ``build()`` once (at most 1024 kept)."""
    body = _BODIES.get(key)
    if body is None:
        if len(_BODIES) >= 1024:
            _BODIES.clear()
        body = _BODIES[key] = _protocol.encode_message(build())
    return body


def check_subscribed(core: Core, codes: Iterable[str], sub_type: SubType) -> None:
    """:class:`~aiofutu.SubscriptionRequired` for the first of ``codes`` not subscribed."""
    book = core._book
    for code in codes:
        if not book.has(code, sub_type):
            raise SubscriptionRequired(code, sub_type.name)


async def fetch(
    core: Core, proto_id: int, body: bytes, rtype: type[_protocol.R], timeout: float | None
) -> _protocol.R:
    """Send ``body`` and parse the reply (``OpenDError`` for a refusal)."""
    check_timeout(timeout)
    frame = await core._request_frame(proto_id, body, timeout)
    return _protocol.decode_response(rtype, frame.body, proto_id, frame.serial)


def open_stream(
    core: Core,
    kind: str,
    codes: tuple[str, ...] | list[str],
    *,
    sub_type: SubType | None = None,
    variant: int = 0,
    conflate: bool = True,
    buffer: int = 1_000,
    overflow: Overflow = "raise",
) -> LatestStream[Any]:
    """A :class:`~aiofutu.LatestStream` of ``kind`` for ``codes`` (not yet started)."""
    core._check_open()
    return LatestStream(
        core._attacher(kind, sub_type),
        tuple(as_codes(codes)),
        kind=kind,
        variant=variant,
        conflate=conflate,
        buffer=buffer,
        overflow=overflow,
    )
