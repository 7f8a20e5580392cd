"""The simulator's answers to each request protocol, as OpenD gives them.

Each handler takes the connection's :class:`~aiofutu.sim._session.Session` and the parsed
``c2s``, and returns the Response plus any pushes to send right after it (the
first-push OpenD sends with a subscription). Handlers never touch the socket.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

from .._kinds import KINDS
from .._pb import (
    common_pb2,
    get_global_state_pb2,
    init_connect_pb2,
    keep_alive_pb2,
    qot_common_pb2,
    qot_get_kl_pb2,
    qot_get_rt_pb2,
    qot_get_security_snapshot_pb2,
    qot_get_static_info_pb2,
    qot_get_sub_info_pb2,
    qot_get_ticker_pb2,
    qot_reg_qot_push_pb2,
    qot_sub_pb2,
)
from ..enums import ProtoId, SubType
from . import _states
from ._history_handlers import HISTORY_HANDLERS
from ._market import market_states
from ._replies import Pushes, Result, SubKey, fail
from ._replies import ok as _ok
from ._replies import refuse_unknown as _refuse_unknown
from ._replies import security_code as _security_code
from ._scenarios import ErrCode
from ._series import KL_OF_SUB, RT
from .kinds import snapshot as _snapshot
from .kinds import static as _static

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from ._session import Session

__all__ = ("HANDLERS", "KIND_HANDLERS", "Pushes", "Result", "SubKey", "fail")

logger = logging.getLogger("aiofutu.sim")

TICKER = SubType.TICKER.wire
_UPDATE_TICKER = int(ProtoId.QOT_UPDATE_TICKER)
SERIES_SUB_TYPES = frozenset((*KL_OF_SUB, RT))
_SUB_TYPES = frozenset(s.wire for s in SubType if s is not SubType.NONE)
_SUB_TYPE_NAMES = {s.wire: s.value for s in SubType}


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


def _describe(key: SubKey) -> str:
    return f"{key[0]} {_SUB_TYPE_NAMES.get(key[1], key[1])}"


def _first_pushes(session: Session, keys: Iterable[SubKey]) -> Pushes:
    server = session.server
    bodies: Pushes = []
    for code, sub_type in keys:
        if sub_type == TICKER and (code, sub_type) in session.pushes:
            sec = server.market.security(code)
            latest = sec.latest()  # one tick: the history is not built for it
            if latest is not None:
                body = server.encoder(sec).body((latest.SerializeToString(),))
                bodies.append((_UPDATE_TICKER, body))
        elif sub_type in SERIES_SUB_TYPES and (code, sub_type) in session.pushes:
            bodies.extend(server.series.first_pushes(session, code, sub_type))
        elif (code, sub_type) in session.pushes:
            first = server.states.first_push(code, sub_type)
            if first is not None:
                bodies.append(first)
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
    refused = server.states.refuse_sub(keys)
    if refused is not None:
        return fail(f"Qot_Sub: {refused}", ErrCode.INVALID_REQUEST)
    now = time.monotonic()
    for key in keys:
        session.subs.setdefault(key, now)
        server.market.activate(key[0])
        if key[1] in SERIES_SUB_TYPES:
            server.series.ensure(*key)
            if key[1] in KL_OF_SUB and c2s.regPushRehabTypeList:
                session.rehab[key] = tuple(dict.fromkeys(c2s.regPushRehabTypeList))
    server.states.track(keys)
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
        session.rehab.pop(key, None)
    return _ok(qot_sub_pb2.Response())


def _reg_push(session: Session, c2s: qot_reg_qot_push_pb2.C2S) -> Result:
    keys = _parse_pairs(c2s.securityList, c2s.subTypeList)
    if isinstance(keys, str):
        return fail(f"Qot_RegQotPush: {keys}")
    unknown = _refuse_unknown(session, (code for code, _ in keys), "Qot_RegQotPush")
    if unknown is not None:
        return unknown
    changed = _register(session, keys, c2s.isRegOrUnReg)
    if c2s.isRegOrUnReg and c2s.rehabTypeList:
        for key in keys:
            if key[1] in KL_OF_SUB and key in session.subs:
                session.rehab[key] = tuple(dict.fromkeys(c2s.rehabTypeList))
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


def _subscribed(session: Session, c2s: Any, what: str, sub_type: int) -> str | Result:
    """The code of a get request's security, or the failure OpenD answers with."""
    code = _security_code(c2s.security) if c2s.HasField("security") else None
    if code is None:
        return fail(f"{what}: a valid security is required")
    unknown = _refuse_unknown(session, (code,), what)
    if unknown is not None:
        return unknown
    if (code, sub_type) not in session.subs:
        name = _SUB_TYPE_NAMES.get(sub_type, sub_type)
        return fail(
            f"{code} is not subscribed to {name} on this connection: subscribe with SubType "
            f"{name} ({sub_type}) before requesting it",
            ErrCode.NOT_SUBSCRIBED,
        )
    return code


def _get_kline(session: Session, c2s: qot_get_kl_pb2.C2S) -> Result:
    sub_type = {kl: sub for sub, kl in KL_OF_SUB.items()}.get(c2s.klType)
    if sub_type is None:
        return fail(f"Qot_GetKL: unknown klType {c2s.klType}")
    if c2s.rehabType not in (0, 1, 2):
        return fail(f"Qot_GetKL: unknown rehabType {c2s.rehabType}")
    if c2s.reqNum <= 0:
        return fail(f"Qot_GetKL: reqNum must be between 1 and 1000, got {c2s.reqNum}")
    code = _subscribed(session, c2s, "Qot_GetKL", sub_type)
    if not isinstance(code, str):
        return code
    return session.server.series.reply(code, c2s.klType, c2s.reqNum), []


def _get_rt(session: Session, c2s: qot_get_rt_pb2.C2S) -> Result:
    code = _subscribed(session, c2s, "Qot_GetRT", RT)
    if not isinstance(code, str):
        return code
    sec = session.server.market.security(code)
    s2c = qot_get_rt_pb2.S2C(security=sec.security, name=sec.name)
    s2c.rtList.extend(session.server.series.time_share(code).points)
    return _ok(qot_get_rt_pb2.Response(s2c=s2c))


Handler = Callable[["Session", Any], Result]


def _kind_handler(name: str) -> Handler:
    """The get handler of quote kind ``name``: ``_get_<name>`` here, or ``get_<name>`` of the
    state kinds' module. Derived from the kind, so a kind without a handler fails at import."""
    handler = globals().get(f"_get_{name}") or getattr(_states, f"get_{name}", None)
    if handler is None:  # pragma: no cover (a kind added without its simulator side)
        raise AssertionError(f"the simulator has no get handler for quote kind {name!r}")
    return cast("Handler", handler)


#: The get handler of each quote kind, by the kind's name in ``aiofutu._kinds.KINDS``.
KIND_HANDLERS: dict[str, Handler] = {k.name: _kind_handler(k.name) for k in KINDS}
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
