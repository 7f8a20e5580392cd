"""Subscribing: the one verb every quote kind's stream and get request builds on.

:class:`SubscriptionAPI` is a stateless mixin of the client written against
:class:`~aiofutu.quotes._core.Core`; what OpenD confirmed is kept in the client's subscription
book (``aiofutu.subscriptions``), which the reconnect supervisor replays.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import _protocol
from .._pb import qot_get_sub_info_pb2, qot_sub_pb2
from ..codes import parse_code
from ..enums import ProtoId, Session, SubType
from ..errors import ConfigurationError
from ..subscriptions import SubscriptionInfo
from ._core import as_codes, as_list, as_sub_types, check_timeout
from .kline import AuType, check_au_type

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._core import Core

__all__ = ("SubscriptionAPI",)


async def _ask(
    core: Core, proto_id: int, message: Any, rtype: type[_protocol.R], timeout: float | None
) -> _protocol.R:
    frame = await core._request_frame(proto_id, message, timeout)
    return _protocol.decode_response(rtype, frame.body, proto_id, frame.serial)


class SubscriptionAPI:
    """``subscribe``, ``unsubscribe``, ``unsubscribe_all``, ``subscriptions``,
    ``query_subscription``."""

    async def subscribe(
        self: Core,
        codes: str | Iterable[str],
        sub_types: SubType | str | Iterable[SubType | str],
        *,
        subscribe_push: bool = True,
        is_first_push: bool = True,
        extended_time: bool = False,
        session: Session | str = Session.NONE,
        rehab_types: Iterable[AuType | str] = (),
        timeout: float | None = None,
    ) -> None:
        """Subscribe ``codes`` to ``sub_types`` (each pair uses one unit of OpenD's quota).

        OpenD only lets a subscription be cancelled one minute after it was made. K-line pushes
        are forward-adjusted unless ``rehab_types`` names the adjustments to push (each one is
        pushed separately; ``kline_stream`` asks for what its ``autype`` needs).
        """
        self._check_open()
        code_list = as_codes(codes)
        types = as_sub_types(sub_types)
        try:
            sess = Session.coerce(session)
        except ValueError:
            raise ConfigurationError(f"unknown session {session!r}") from None
        rehab = tuple(
            dict.fromkeys(
                check_au_type(a).wire
                for a in as_list(rehab_types, "rehab_types", "an iterable of AuType")
            )
        )
        check_timeout(timeout)
        securities = [(m.wire, c) for m, c in map(parse_code, code_list)]
        req = _protocol.sub_request(
            securities,
            [t.wire for t in types],
            subscribe=True,
            register_push=bool(subscribe_push),
            first_push=bool(is_first_push),
            extended_time=bool(extended_time),
            session=sess.wire,
            rehab_types=rehab,
        )
        await _ask(self, ProtoId.QOT_SUB, req, qot_sub_pb2.Response, timeout)
        self._book.confirmed(
            code_list,
            types,
            push=bool(subscribe_push),
            first_push=bool(is_first_push),
            extended_time=bool(extended_time),
            session=sess.wire,
            rehab_types=rehab,
        )

    async def unsubscribe(
        self: Core,
        codes: str | Iterable[str],
        sub_types: SubType | str | Iterable[SubType | str],
        *,
        timeout: float | None = None,
    ) -> None:
        """Cancel subscriptions (OpenD refuses it for ones younger than a minute)."""
        self._check_open()
        code_list = as_codes(codes)
        types = as_sub_types(sub_types)
        check_timeout(timeout)
        securities = [(m.wire, c) for m, c in map(parse_code, code_list)]
        req = _protocol.sub_request(
            securities,
            [t.wire for t in types],
            subscribe=False,
            register_push=False,
            first_push=False,
        )
        await _ask(self, ProtoId.QOT_SUB, req, qot_sub_pb2.Response, timeout)
        self._book.forget(code_list, types)

    async def unsubscribe_all(self: Core, *, timeout: float | None = None) -> None:
        """Cancel every subscription of this connection."""
        self._check_open()
        check_timeout(timeout)
        await _ask(
            self, ProtoId.QOT_SUB, _protocol.unsub_all_request(), qot_sub_pb2.Response, timeout
        )
        self._book.clear()

    def subscriptions(self: Core) -> dict[str, frozenset[SubType]]:
        """This client's subscriptions as OpenD confirmed them (no request is sent)."""
        return self._book.by_code()

    async def query_subscription(
        self: Core, *, all_connections: bool = False, timeout: float | None = None
    ) -> SubscriptionInfo:
        """Ask OpenD what is subscribed (Qot_GetSubInfo) and how much quota is left."""
        self._check_open()
        check_timeout(timeout)
        resp = await _ask(
            self,
            ProtoId.QOT_GET_SUB_INFO,
            _protocol.sub_info_request(bool(all_connections)),
            qot_get_sub_info_pb2.Response,
            timeout,
        )
        return SubscriptionInfo.from_s2c(resp.s2c)
