"""The client's record of what OpenD confirmed: one entry per (code, SubType) with its options.

It is written only after OpenD accepted a Qot_Sub, and read to restore every subscription after
a reconnect (:meth:`SubscriptionBook.restore_plan`), to check a request needs no subscription it
lacks, and to see which streams still have to subscribe. Nothing here does I/O.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import BaseModel, ConfigDict

from .codes import format_code
from .enums import SubType

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = (
    "MAX_CODES_PER_SUB",
    "SubBatch",
    "SubscriptionBook",
    "SubscriptionInfo",
    "SubscriptionRecord",
)

#: OpenD takes at most this many codes in one Qot_Sub when restoring.
MAX_CODES_PER_SUB = 100


class SubscriptionInfo(BaseModel):
    """Answer of Qot_GetSubInfo: quota use and what is subscribed, by sub type."""

    model_config = ConfigDict(frozen=True)

    total_used: int
    remain: int
    own_used: int
    #: sub type -> codes, for this connection (or all, with ``all_connections=True``)
    sub_list: dict[SubType, list[str]]

    @classmethod
    def from_s2c(cls, s2c: Any) -> SubscriptionInfo:
        """Build it from a Qot_GetSubInfo ``S2C``."""
        sub_list: dict[SubType, list[str]] = {}
        own_used = 0
        wire_to_sub = {t.wire: t for t in SubType}
        for conn in s2c.connSubInfoList:
            if conn.isOwnConnData:
                own_used += conn.usedQuota
            for info in conn.subInfoList:
                st = wire_to_sub.get(info.subType, SubType.NONE)
                codes = sub_list.setdefault(st, [])
                for sec in info.securityList:
                    code = format_code(sec.market, sec.code)
                    if code not in codes:
                        codes.append(code)
        return cls(
            total_used=s2c.totalUsedQuota,
            remain=s2c.remainQuota,
            own_used=own_used,
            sub_list=sub_list,
        )


@dataclass(frozen=True)
class SubscriptionRecord:
    """One (code, SubType) that OpenD confirmed, with the options it was made with."""

    code: str
    sub_type: SubType
    #: push registered for it (``subscribe_push``)
    push: bool = True
    #: OpenD was asked to re-send the latest data on subscribing (``is_first_push``)
    first_push: bool = False
    extended_time: bool = False
    #: ``Session`` wire value (0: none asked)
    session: int = 0
    #: ``time.monotonic()`` when first confirmed (kept when re-subscribed)
    since: float = 0.0
    #: rehab types registered for K-line pushes (RehabType wire values; empty: OpenD's default,
    #: forward-adjusted only)
    rehab_types: tuple[int, ...] = ()


class SubBatch(NamedTuple):
    """One Qot_Sub to send when restoring: codes that share a sub type and options."""

    sub_type: SubType
    push: bool
    extended_time: bool
    session: int
    codes: list[str]
    #: RehabType wire values registered for K-line pushes (empty: OpenD's default)
    rehab_types: tuple[int, ...] = ()


class SubscriptionBook:
    """(code, SubType) -> :class:`SubscriptionRecord`, in the order they were first made."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, SubType], SubscriptionRecord] = {}

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[SubscriptionRecord]:
        return iter(list(self._records.values()))

    def __contains__(self, key: object) -> bool:
        return key in self._records

    def get(self, code: str, sub_type: SubType) -> SubscriptionRecord | None:
        """The record of ``code`` for ``sub_type``, or ``None``."""
        return self._records.get((code, sub_type))

    def has(self, code: str, sub_type: SubType, *, push: bool = False) -> bool:
        """Whether ``code`` is subscribed to ``sub_type`` (with push registered, if asked)."""
        record = self._records.get((code, sub_type))
        return record is not None and (record.push or not push)

    def confirmed(
        self,
        codes: Iterable[str],
        sub_types: Iterable[SubType],
        *,
        push: bool,
        first_push: bool = False,
        extended_time: bool = False,
        session: int = 0,
        rehab_types: Iterable[int] = (),
    ) -> None:
        """Record a Qot_Sub OpenD accepted. Push, once registered, stays until unsubscribed."""
        now = time.monotonic()
        types = list(sub_types)
        rehab = tuple(rehab_types)
        for code in codes:
            for t in types:
                old = self._records.get((code, t))
                self._records[(code, t)] = SubscriptionRecord(
                    code,
                    t,
                    push=push or (old is not None and old.push),
                    first_push=first_push,
                    extended_time=extended_time,
                    session=session,
                    since=now if old is None else old.since,
                    rehab_types=rehab or (() if old is None else old.rehab_types),
                )

    def forget(self, codes: Iterable[str], sub_types: Iterable[SubType]) -> None:
        """Drop records (after an unsubscribe, or a subscription OpenD refused to restore)."""
        types = list(sub_types)
        for code in codes:
            for t in types:
                self._records.pop((code, t), None)

    def clear(self) -> None:
        """Forget everything (after ``unsubscribe_all``)."""
        self._records.clear()

    def by_code(self) -> dict[str, frozenset[SubType]]:
        """code -> its sub types, as ``Client.subscriptions()`` reports them."""
        out: dict[str, set[SubType]] = {}
        for code, t in self._records:
            out.setdefault(code, set()).add(t)
        return {code: frozenset(types) for code, types in out.items()}

    def without_push(self, codes: Iterable[str], sub_type: SubType) -> list[str]:
        """Which of ``codes`` have no ``sub_type`` subscription with push yet."""
        return [c for c in codes if not self.has(c, sub_type, push=True)]

    def restore_plan(self) -> list[SubBatch]:
        """The Qot_Sub requests that restore every record: grouped by sub type and options,
        at most :data:`MAX_CODES_PER_SUB` codes each, first push off (the kinds restore their
        own state afterwards)."""
        groups: dict[tuple[SubType, bool, bool, int, tuple[int, ...]], list[str]] = {}
        for r in self._records.values():
            key = (r.sub_type, r.push, r.extended_time, r.session, r.rehab_types)
            groups.setdefault(key, []).append(r.code)
        step = MAX_CODES_PER_SUB
        return [
            SubBatch(sub_type, push, ext, sess, codes[i : i + step], rehab)
            for (sub_type, push, ext, sess, rehab), codes in groups.items()
            for i in range(0, len(codes), step)
        ]
