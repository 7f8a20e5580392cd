"""Why an InitConnect failed, in words: a peer that is not OpenD, a refusal, a key mismatch.

Pure functions over the first bytes a peer sent and the error the handshake raised (moved out
of ``_connection.py``, which keeps only the actor).
"""

from __future__ import annotations

from ._codec import MAGIC
from ._pb import init_connect_pb2
from .errors import (
    ClientClosed,
    ConnectError,
    ConnectionLost,
    FutuError,
    OpenDError,
    RemoteProtocolError,
    RequestTimeout,
)

__all__ = ("init_failed", "plain_init_reply")

_ENCRYPTION_HINT = (
    "; if OpenD is configured with an RSA key, pass rsa_private_key= to connect() "
    "(--rsa-key on the command line)"
)


def init_failed(
    where: str, exc: FutuError, connect_timeout: float, head: bytes, *, encrypted: bool
) -> ConnectError:
    """Say why InitConnect failed: a peer that is not OpenD, or OpenD refusing us.

    Encryption is suggested only when the reply could be an encrypted OpenD reply: a frame
    with OpenD's header whose body does not check or parse, or OpenD refusing InitConnect.
    """
    if head and not MAGIC.startswith(head[: len(MAGIC)]):
        return ConnectError(
            f"the server at {where} does not speak OpenD's protocol: it answered "
            f"InitConnect with {_describe(head)}; check the host and port (OpenD's API "
            "port is 11111 unless OpenD.xml sets another)"
        )
    if isinstance(exc, RequestTimeout):
        return ConnectError(
            f"OpenD at {where} accepted the connection but did not answer InitConnect "
            f"within {connect_timeout:g}s"
        )
    if isinstance(exc, (ConnectionLost, ClientClosed)) and not head:
        return ConnectError(
            f"the server at {where} closed the connection without answering InitConnect "
            "(it is not OpenD, or OpenD refused this client)"
        )
    reason = exc.reason if isinstance(exc, RemoteProtocolError) else str(exc)
    could_be_encrypted = isinstance(exc, OpenDError) or (
        isinstance(exc, RemoteProtocolError) and exc.recoverable
    )
    if encrypted:
        hint = (
            "" if "RSA key" in reason else "; check that the client and OpenD use the same RSA key"
        )
    else:
        hint = _ENCRYPTION_HINT if could_be_encrypted else ""
    return ConnectError(f"InitConnect to OpenD at {where} failed: {reason}{hint}")


def plain_init_reply(body: bytes) -> str | None:
    """What OpenD said, if ``body`` reads as an unencrypted InitConnect reply (else None)."""
    resp = init_connect_pb2.Response()
    try:
        resp.ParseFromString(body)
    except Exception:
        return None
    if not (resp.HasField("s2c") or resp.HasField("retMsg")):
        return None
    return f"retType={resp.retType}" + (f": {resp.retMsg}" if resp.retMsg else "")


def _describe(head: bytes) -> str:
    """The first bytes a peer sent, and what kind of server they look like."""
    shown = repr(head[:32]) + ("..." if len(head) > 32 else "")
    text = head.lstrip().lower()
    kind = (
        "an HTTP server"
        if text.startswith((b"http/", b"<!doctype html", b"<html"))
        else "a TLS server"
        if head[:1] in (b"\x15", b"\x16") and head[1:2] == b"\x03"
        else "an SSH server"
        if head.startswith(b"SSH-")
        else None
    )
    return shown + (f" (it looks like {kind})" if kind else "")
