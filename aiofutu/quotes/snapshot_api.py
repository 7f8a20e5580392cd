"""The snapshot verbs of the client: ``get_market_snapshot`` and its frame form (3203).

:class:`SnapshotAPI` is a stateless mixin written against :class:`~aiofutu.quotes._core.Core`;
``Client`` inherits it. Models and decoders are :mod:`aiofutu.quotes.snapshot`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from .._pb import qot_get_security_snapshot_pb2
from .._protocol import decode_response
from ..enums import ProtoId
from ..errors import RemoteProtocolError
from ..streams import _import_polars
from ._core import as_codes, check_timeout
from .snapshot import MAX_CODES, Snapshot, get_security_snapshot_request, snapshots_from_s2c

if TYPE_CHECKING:
    from collections.abc import Iterable

    import polars as pl

    from ._core import Core

__all__ = ("SnapshotAPI",)


def _chunks(codes: list[str]) -> list[list[str]]:
    return [codes[i : i + MAX_CODES] for i in range(0, len(codes), MAX_CODES)]


def _in_order(codes: list[str], found: dict[str, Snapshot]) -> list[Snapshot]:
    missing = [c for c in codes if c not in found]
    if missing:
        raise RemoteProtocolError(
            f"the snapshot reply lacks {len(missing)} requested code(s): {', '.join(missing[:5])}",
            proto_id=ProtoId.QOT_GET_SECURITY_SNAPSHOT,
            recoverable=True,
        )
    return [found[c] for c in codes]


class SnapshotAPI:
    """``get_market_snapshot`` and ``get_market_snapshot_frame``."""

    async def _snapshot_pbs(self: Core, codes: Any, timeout: float | None) -> tuple[list[str], Any]:
        self._check_open()
        items = as_codes(codes)
        check_timeout(timeout)
        requests = [get_security_snapshot_request(chunk) for chunk in _chunks(items)]
        replies: list[Any] = [None] * len(requests)
        proto = ProtoId.QOT_GET_SECURITY_SNAPSHOT
        if len(requests) == 1:
            frame = await self._request_frame(proto, requests[0], timeout)
            replies[0] = _decode(frame.body, frame.serial)
            return items, replies
        failed: list[BaseException] = []

        async def one(i: int, scope: anyio.CancelScope) -> None:
            try:
                frame = await self._request_frame(proto, requests[i], timeout)
                replies[i] = _decode(frame.body, frame.serial)
            except Exception as exc:  # the first failure fails the call, typed (not a group)
                failed.append(exc)
                scope.cancel()

        async with anyio.create_task_group() as tg:
            for i in range(len(requests)):
                tg.start_soon(one, i, tg.cancel_scope)
        if failed:
            raise failed[0]
        return items, replies

    async def get_market_snapshot(
        self: Core, codes: str | Iterable[str], *, timeout: float | None = None
    ) -> list[Snapshot]:
        """The snapshot of each of ``codes`` (any number; no subscription needed), in order.

        The codes are de-duplicated keeping their order. More than 400 are split into requests
        of 400 (OpenD's limit), sent concurrently; the client's rate limiter paces them to
        OpenD's 60 snapshot requests per 30 s. A malformed code raises
        :class:`~aiofutu.InvalidCode` and an empty list :class:`~aiofutu.ConfigurationError`,
        before anything is sent; a code OpenD does not know fails the request
        (:class:`~aiofutu.OpenDError`).
        """
        items, replies = await SnapshotAPI._snapshot_pbs(self, codes, timeout)
        found: dict[str, Snapshot] = {}
        for s2c in replies:
            for snap in snapshots_from_s2c(s2c):
                found[snap.code] = snap
        return _in_order(items, found)

    async def get_market_snapshot_frame(
        self: Core, codes: str | Iterable[str], *, timeout: float | None = None
    ) -> pl.DataFrame:
        """Like :meth:`get_market_snapshot`, as a polars DataFrame with the SDK's 142 columns."""
        from ._snapshot_frame import snapshots_to_polars

        await _import_polars()
        snaps = await SnapshotAPI.get_market_snapshot(self, codes, timeout=timeout)
        return snapshots_to_polars(snaps)


def _decode(body: bytes, serial: int) -> Any:
    rsp = decode_response(
        qot_get_security_snapshot_pb2.Response, body, ProtoId.QOT_GET_SECURITY_SNAPSHOT, serial
    )
    return rsp.s2c
