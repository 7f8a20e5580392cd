"""What the quote verbs are written against, and the argument checks they share.

Each ``quotes/<kind>.py`` holds a stateless mixin of the kind's verbs (requests and streams),
written once against :class:`Core`, the client's few primitives: check it is open, send a
request on the current link, look up the subscription book, attach a stream to its kind's
router. ``Client`` inherits the mixins (httpcore's "verbs once over one primitive").
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from ..codes import parse_code
from ..enums import SubType
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from .._codec import Frame
    from .._routing import Attacher
    from ..subscriptions import SubscriptionBook

__all__ = ("Core", "as_codes", "as_list", "as_sub_types", "check_timeout")


class Core(Protocol):
    """The client primitives a quote mixin uses."""

    _book: SubscriptionBook

    def _check_open(self) -> None: ...

    async def _request_frame(self, proto_id: int, message: Any, timeout: float | None) -> Frame: ...

    def _attacher(self, kind: str, sub_type: SubType | None = None) -> Attacher: ...


def as_list(value: object, what: str, expected: str) -> list[Any]:
    if isinstance(value, (str, Enum)):
        return [value]
    if isinstance(value, (bytes, bytearray, dict)) or not isinstance(value, Iterable):
        raise ConfigurationError(f"{what} must be {expected}, got {value!r}")
    return list(value)


def as_codes(codes: str | Iterable[str], what: str = "codes") -> list[str]:
    items = as_list(codes, what, "a code string or an iterable of code strings")
    if not items:
        raise ConfigurationError(f"{what} must name at least one security code")
    out: list[str] = []
    for item in items:
        parse_code(item)  # raises InvalidCode
        if item not in out:
            out.append(item)
    return out


def as_sub_types(sub_types: SubType | str | Iterable[SubType | str]) -> list[SubType]:
    items = as_list(sub_types, "sub_types", "a SubType or an iterable of SubType")
    if not items:
        raise ConfigurationError("sub_types must name at least one SubType")
    out: list[SubType] = []
    for item in items:
        try:
            st = SubType.coerce(item)
        except ValueError:
            names = ", ".join(m.name for m in SubType if m is not SubType.NONE)
            raise ConfigurationError(f"unknown sub type {item!r}; use one of {names}") from None
        if st is SubType.NONE:
            raise ConfigurationError("SubType.NONE cannot be subscribed")
        if st not in out:
            out.append(st)
    return out


def check_timeout(timeout: object, name: str = "timeout") -> None:
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0
    ):
        raise ConfigurationError(f"{name} must be a positive number of seconds, got {timeout!r}")
