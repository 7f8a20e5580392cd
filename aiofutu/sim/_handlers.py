"""The simulator's answers to each request protocol, as OpenD gives them.

Each handler takes the connection's :class:`~aiofutu.sim._session.Session` and the parsed
``c2s``, and returns the Response plus any 3011 push bodies to send right after it (the
first-push OpenD sends with a subscription). Handlers never touch the socket.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .._kinds import KINDS
from .._pb import (
    common_pb2,
    get_global_state_pb2,
    init_connect_pb2,
    keep_alive_pb2,
    qot_common_pb2,
    qot_get_security_snapshot_pb2,
    qot_get_static_info_pb2,
    qot_get_sub_info_pb2,
    qot_get_ticker_pb2,
    qot_reg_qot_push_pb2,
    qot_sub_pb2,
)
from ..codes import format_code
from ..enums import MARKET_BY_WIRE, Market, ProtoId, SubType
from ._history_handlers import HISTORY_HANDLERS
from ._market import market_states
from ._scenarios import ErrCode
from .kinds import snapshot as _snapshot
from .kinds import static as _static

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from ._session import Session

__all__ = ("HANDLERS", "KIND_HANDLERS", "Result", "SubKey", "fail")

logger = logging.getLogger("aiofutu.sim")

#: A subscription: (code string such as ``"HK.00700"``, SubType wire value).
SubKey = tuple[str, int]
#: The Response, and 3011 push bodies to send after it.
Result = tuple["Message", list[bytes]]

TICKER = SubType.TICKER.wire
_SUB_TYPES = frozenset(s.wire for s in SubType if s is not SubType.NONE)
_SUB_TYPE_NAMES = {s.wire: s.value for s in SubType}


def fail(message: str, code: ErrCode = ErrCode.INVALID_REQUEST) -> Result:
    """A failed Response (``retType=-1``) with OpenD-style ``retMsg`` and ``errCode``."""
    # Every *_pb2.Response shares the envelope's field numbers, so any of them will do.
    return keep_alive_pb2.Response(retType=-1, retMsg=message, errCode=int(code)), []


def _ok(response: Any) -> Result:
    response.retType = 0
    response.s2c.SetInParent()  # S2C present even when empty (Qot_Sub, RegQotPush)
    return response, []


def _security_code(sec: qot_common_pb2.Security) -> str | None:
    market = MARKET_BY_WIRE.get(sec.market)
    if market is None or market is Market.NONE or not sec.code:
        return None
    return format_code(sec.market, sec.code)


def _parse_pairs(
    securities: Sequence[qot_common_pb2.Security], sub_types: Iterable[int]
) -> list[SubKey] | str:
    """Validated, de-duplicated subscription keys, or an error message."""
    if not securities:
        return "securityList is empty"
    types = list(dict.fromkeys(sub_types))
    if not types:
        return "subTypeList is empty"
    bad = [t for t in types if t not in _SUB_TYPES]
    if bad:
        return f"unknown SubType value(s) {bad}"
    codes: list[str] = []
    for sec in securities:
        code = _security_code(sec)
        if code is None:
            return f"invalid security (market={sec.market}, code={sec.code!r})"
        codes.append(code)
    return [(c, t) for c in dict.fromkeys(codes) for t in types]


def _refuse_unknown(session: Session, codes: Iterable[str], what: str) -> Result | None:
    """OpenD refuses a request naming a security it does not know; so does the simulator.

    OpenD's exact ``retMsg`` is not documented (its stock-info reply names unknown codes
    "unknown stock"): this wording, and ``errCode`` 8, are the simulator's choice.
    """
    market = session.server.market
    unknown = [code for code in dict.fromkeys(codes) if not market.knows(code)]
    if not unknown:
        return None
    names = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
    return fail(
        f"{what}: unknown stock{'s' if len(unknown) > 1 else ''} {names} (not in the simulator's "
        "security list; add it with SimConfig(securities=...) or aiofutu sim --codes)",
        ErrCode.UNKNOWN_SECURITY,
    )


def _describe(key: SubKey) -> str:
    return f"{key[0]} {_SUB_TYPE_NAMES.get(key[1], key[1])}"


def _first_pushes(session: Session, keys: Iterable[SubKey]) -> list[bytes]:
    server = session.server
    bodies = []
    for code, sub_type in keys:
        if sub_type == TICKER and (code, sub_type) in session.pushes:
            sec = server.market.security(code)
            latest = sec.latest()  # one tick: the history is not built for it
            if latest is not None:
                bodies.append(server.encoder(sec).body((latest.SerializeToString(),)))
    return bodies


def _register(session: Session, keys: Iterable[SubKey], on: bool) -> list[SubKey]:
    """(Un)register push for subscribed keys; returns the keys that changed."""
    server = session.server
    changed = []
    for key in keys:
        if on and key in session.subs and key not in session.pushes:
            session.pushes.add(key)
            changed.append(key)
        elif not on and key in session.pushes:
            session.pushes.discard(key)
            changed.append(key)
        if key[1] == TICKER:
            server.watch(session, key[0], key in session.pushes)
    if on:
        for code, sub_type in changed:
            if sub_type == TICKER:
                server.push_registered(session, code)
    return changed


def _init_connect(session: Session, c2s: init_connect_pb2.C2S) -> Result:
    if not session.ready:
        refused = session.negotiate(c2s)
        if refused is not None:
            logger.warning("connection %d: refused InitConnect: %s", session.conn_id, refused)
            session.refuse()
            return fail(refused, ErrCode.ENCRYPTION)
        session.ready = True
        session.client_id = c2s.clientID
        session.push_fmt = c2s.pushProtoFmt if c2s.pushProtoFmt in (0, 1) else 0
        logger.debug("connection %d: InitConnect from %r", session.conn_id, c2s.clientID)
    cfg = session.server.config
    response = init_connect_pb2.Response(
        s2c=init_connect_pb2.S2C(
            serverVer=cfg.server_ver,
            loginUserID=cfg.login_user_id,
            connID=session.conn_id,
            connAESKey=session.aes_key,
            keepAliveInterval=cfg.keepalive_interval,
        )
    )
    if session.aes_iv is not None:
        response.s2c.aesCBCiv = session.aes_iv  # its presence selects CBC in the client
    return _ok(response)


def _keep_alive(session: Session, c2s: keep_alive_pb2.C2S) -> Result:
    s2c = keep_alive_pb2.S2C(time=int(time.time()))
    return _ok(keep_alive_pb2.Response(s2c=s2c))


def _global_state(session: Session, c2s: get_global_state_pb2.C2S) -> Result:
    server = session.server
    cfg = server.config
    now = time.time()
    s2c = get_global_state_pb2.S2C(
        qotLogined=True,
        trdLogined=False,
        serverVer=cfg.server_ver,
        serverBuildNo=cfg.server_build_no,
        time=int(now),
        localTime=now,
        programStatus=common_pb2.ProgramStatus(type=common_pb2.ProgramStatusType_Ready),
        qotSvrIpAddr="127.0.0.1",
        trdSvrIpAddr="127.0.0.1",
        connID=session.conn_id,
        **market_states(now, server.faults.market_hours),
    )
    return _ok(get_global_state_pb2.Response(s2c=s2c))


def _sub(session: Session, c2s: qot_sub_pb2.C2S) -> Result:
    if c2s.isUnsubAll:
        return _unsubscribe(session, list(session.subs))
    keys = _parse_pairs(c2s.securityList, c2s.subTypeList)
    if isinstance(keys, str):
        return fail(f"Qot_Sub: {keys}")
    unknown = _refuse_unknown(session, (code for code, _ in keys), "Qot_Sub")
    if unknown is not None:
        return unknown
    if not c2s.isSubOrUnSub:
        return _unsubscribe(session, keys)
    server = session.server
    quota = server.config.sub_quota
    used = server.used_quota()
    new = {k for k in keys if k not in used}
    if new and len(used) + len(new) > quota:
        return fail(
            f"subscription quota exhausted: {len(used)} of {quota} used, "
            f"this request needs {len(new)} more; unsubscribe something first",
            ErrCode.QUOTA_EXHAUSTED,
        )
    now = time.monotonic()
    for key in keys:
        session.subs.setdefault(key, now)
        server.market.activate(key[0])
    if c2s.HasField("isRegOrUnRegPush"):
        _register(session, keys, c2s.isRegOrUnRegPush)
    response, _ = _ok(qot_sub_pb2.Response())
    first = c2s.isFirstPush if c2s.HasField("isFirstPush") else True
    return response, _first_pushes(session, keys) if first else []


def _unsubscribe(session: Session, keys: list[SubKey]) -> Result:
    min_age = session.server.config.unsub_min_age
    now = time.monotonic()
    young = [(k, now - session.subs[k]) for k in keys if k in session.subs]
    young = [(k, age) for k, age in young if age < min_age]
    if young:
        key, age = young[0]
        return fail(
            "unsubscribe refused: a subscription can only be cancelled one minute after it "
            f"was made (here {min_age:g} s); {_describe(key)} is {age:.1f} s old",
            ErrCode.UNSUB_TOO_EARLY,
        )
    _register(session, keys, False)
    for key in keys:
        session.subs.pop(key, None)
    return _ok(qot_sub_pb2.Response())


def _reg_push(session: Session, c2s: qot_reg_qot_push_pb2.C2S) -> Result:
    keys = _parse_pairs(c2s.securityList, c2s.subTypeList)
    if isinstance(keys, str):
        return fail(f"Qot_RegQotPush: {keys}")
    unknown = _refuse_unknown(session, (code for code, _ in keys), "Qot_RegQotPush")
    if unknown is not None:
        return unknown
    changed = _register(session, keys, c2s.isRegOrUnReg)
    response, _ = _ok(qot_reg_qot_push_pb2.Response())
    first = c2s.isFirstPush if c2s.HasField("isFirstPush") else True
    return response, _first_pushes(session, changed) if c2s.isRegOrUnReg and first else []


def _sub_info(session: Session, c2s: qot_get_sub_info_pb2.C2S) -> Result:
    server = session.server
    sessions = server.sessions() if c2s.isReqAllConn else [session]
    conn_list = []
    for other in sessions:
        by_type: dict[int, list[str]] = {}
        for code, sub_type in other.subs:
            by_type.setdefault(sub_type, []).append(code)
        info = qot_common_pb2.ConnSubInfo(usedQuota=len(other.subs), isOwnConnData=other is session)
        for sub_type in sorted(by_type):
            entry = info.subInfoList.add(subType=sub_type)
            for code in by_type[sub_type]:
                entry.securityList.append(server.market.security(code).security)
        conn_list.append(info)
    used = len(server.used_quota())
    s2c = qot_get_sub_info_pb2.S2C(
        connSubInfoList=conn_list,
        totalUsedQuota=used,
        remainQuota=max(server.config.sub_quota - used, 0),
    )
    return _ok(qot_get_sub_info_pb2.Response(s2c=s2c))


def _get_ticker(session: Session, c2s: qot_get_ticker_pb2.C2S) -> Result:
    code = _security_code(c2s.security) if c2s.HasField("security") else None
    if code is None:
        return fail("Qot_GetTicker: a valid security is required")
    unknown = _refuse_unknown(session, (code,), "Qot_GetTicker")
    if unknown is not None:
        return unknown
    if (code, TICKER) not in session.subs:
        return fail(
            f"{code} is not subscribed to TICKER on this connection: "
            "subscribe with SubType TICKER (4) before requesting ticks",
            ErrCode.NOT_SUBSCRIBED,
        )
    max_ticks = session.server.config.max_ticks
    if c2s.maxRetNum <= 0:
        return fail(f"maxRetNum must be between 1 and {max_ticks}, got {c2s.maxRetNum}")
    sec = session.server.market.security(code)
    s2c = qot_get_ticker_pb2.S2C(security=sec.security, name=sec.name)
    s2c.tickerList.extend(sec.recent(min(c2s.maxRetNum, max_ticks)))
    return _ok(qot_get_ticker_pb2.Response(s2c=s2c))


Handler = Callable[["Session", Any], Result]
#: The get handler of each quote kind, by the kind's name in ``aiofutu._kinds.KINDS``.
KIND_HANDLERS: dict[str, Handler] = {
    "ticker": _get_ticker,
}
HANDLERS: dict[int, tuple[type[Message], Handler]] = {
    ProtoId.INIT_CONNECT: (init_connect_pb2.Request, _init_connect),
    ProtoId.GET_GLOBAL_STATE: (get_global_state_pb2.Request, _global_state),
    ProtoId.KEEP_ALIVE: (keep_alive_pb2.Request, _keep_alive),
    ProtoId.QOT_SUB: (qot_sub_pb2.Request, _sub),
    ProtoId.QOT_REG_QOT_PUSH: (qot_reg_qot_push_pb2.Request, _reg_push),
    ProtoId.QOT_GET_SUB_INFO: (qot_get_sub_info_pb2.Request, _sub_info),
    # requests without a subscription
    ProtoId.QOT_GET_STATIC_INFO: (qot_get_static_info_pb2.Request, _static.handle),
    ProtoId.QOT_GET_SECURITY_SNAPSHOT: (qot_get_security_snapshot_pb2.Request, _snapshot.handle),
    # every quote kind's get request, from the one table (a kind without a handler is an error)
    **{k.get_proto_id: (k.get_request, KIND_HANDLERS[k.name]) for k in KINDS},
    # requests without a subscription: history K-lines and their quota, market state
    **HISTORY_HANDLERS,
}
