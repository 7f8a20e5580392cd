"""Every exception aiofutu raises, rooted at :class:`FutuError`.

Callers catch plain exception types (``except aiofutu.ConnectionLost``): the library never returns
``(ret, data)`` tuples and never lets a foreign type (``OSError``, protobuf's ``DecodeError``, an
anyio error or an ``ExceptionGroup`` of its own tasks) escape.
"""

from __future__ import annotations

from typing import Any

__all__ = (
    "ClientClosed",
    "ConfigurationError",
    "ConnectError",
    "ConnectionLost",
    "FutuError",
    "HistoryQuotaExhausted",
    "InvalidCode",
    "LocalProtocolError",
    "MissingDependency",
    "OpenDError",
    "ProtocolError",
    "RateLimited",
    "RemoteProtocolError",
    "RequestTimeout",
    "SlowConsumer",
    "SubscriptionRequired",
    "TransportError",
    "UnsupportedMarket",
)


class FutuError(Exception):
    """Root of everything aiofutu raises."""


class ConfigurationError(FutuError, ValueError):
    """A bad argument or setting, or a misused client (entered twice, used before entering).

    Detected before anything is sent.
    """


class InvalidCode(ConfigurationError):
    """A security code that is not of the form ``MARKET.CODE`` (for example ``HK.00700``)."""


class ProtocolError(FutuError):
    """A frame or message that breaks the OpenD wire protocol.

    ``proto_id`` and ``serial`` name the offending frame when they are known.
    """

    def __init__(self, message: str, *, proto_id: int | None = None, serial: int | None = None):
        self.proto_id = proto_id
        self.serial = serial
        where = []
        if proto_id is not None:
            where.append(f"proto_id={proto_id}")
        if serial is not None:
            where.append(f"serial={serial}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)
        self.reason = message


class LocalProtocolError(ProtocolError):
    """We were asked to build a frame or message that the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that are not a valid frame or message.

    ``recoverable`` is true when the frame boundaries are intact (a bad SHA1, a body that does not
    parse), so the stream can go on after skipping the frame; false when framing itself is lost
    (bad magic, oversized length), so the connection must be closed.
    """

    def __init__(
        self,
        message: str,
        *,
        proto_id: int | None = None,
        serial: int | None = None,
        recoverable: bool = False,
    ):
        super().__init__(message, proto_id=proto_id, serial=serial)
        self.recoverable = recoverable


class TransportError(FutuError):
    """The TCP link to OpenD failed."""


class ConnectError(TransportError):
    """Could not open a connection to OpenD, or InitConnect did not complete."""


class ConnectionLost(TransportError):
    """The connection dropped; raised by every pending request and every open stream."""


class RequestTimeout(FutuError, TimeoutError):
    """No reply to a request within its timeout. The connection stays usable."""

    def __init__(self, message: str, *, proto_id: int, serial: int, timeout: float):
        super().__init__(message)
        self.proto_id = proto_id
        self.serial = serial
        self.timeout = timeout


class OpenDError(FutuError):
    """OpenD answered a request with a non-zero ``retType``; ``ret_msg`` is OpenD's own text."""

    def __init__(self, *, proto_id: int, ret_type: int, err_code: int, ret_msg: str):
        self.proto_id = proto_id
        self.ret_type = ret_type
        self.err_code = err_code
        self.ret_msg = ret_msg
        detail = ret_msg or "no message"
        super().__init__(
            f"OpenD refused proto_id={proto_id}: {detail} (retType={ret_type}, errCode={err_code})"
        )


class SubscriptionRequired(FutuError):
    """The request needs a subscription this client does not hold (TICKER for get_rt_ticker)."""

    def __init__(self, code: str, sub_type: str):
        self.code = code
        self.sub_type = sub_type
        super().__init__(
            f"{code} is not subscribed for {sub_type} on this client; "
            f"call `await client.subscribe([{code!r}], [SubType.{sub_type}])` first"
        )


class SlowConsumer(FutuError):
    """A stream with ``overflow="raise"`` lost ticks because its consumer fell behind."""

    def __init__(self, lost: int, *, codes: tuple[str, ...] = ()):
        self.lost = lost
        self.codes = codes
        super().__init__(
            f"stream consumer fell behind and {lost} tick(s) were lost"
            + (f" for {', '.join(codes)}" if codes else "")
        )


class MissingDependency(FutuError, ImportError):
    """An optional extra is needed (for example ``pip install "aiofutu[polars]"``)."""


class ClientClosed(FutuError):
    """The client (or stream) was used, or entered again, after it was closed."""


class UnsupportedMarket(ConfigurationError):
    """A valid code whose market does not offer the data asked for (the broker queue is HK only)."""

    def __init__(self, code: str, what: str, markets: tuple[str, ...]):
        self.code = code
        self.what = what
        self.markets = markets
        super().__init__(f"{what} is available only for {', '.join(markets)} codes, not {code!r}")


class RateLimited(RequestTimeout):
    """OpenD's rate limit for this protocol frees a slot only after the request's timeout.

    Raised at once, before anything is sent (the client waits for a slot when the timeout
    allows it). ``retry_after`` is the wait in seconds that would have been needed.
    """

    def __init__(
        self, proto_id: int, count: int, window: float, retry_after: float, timeout: float
    ):
        self.count = count
        self.window = window
        self.retry_after = retry_after
        super().__init__(
            f"OpenD allows {count} requests of proto_id={proto_id} per {window:g}s; the next slot "
            f"frees up in {retry_after:.2f}s, after this request's timeout of {timeout:g}s "
            "(pass a longer timeout to wait for it)",
            proto_id=proto_id,
            serial=0,
            timeout=timeout,
        )


class HistoryQuotaExhausted(OpenDError):
    """OpenD refused history K-lines of a new security: the history quota is used up.

    Each distinct security requested within the quota's window (30 days in OpenD's docs; a
    2026 export says 7) costs one unit. ``used``/``remain`` are the quota as 3104 reported it
    right after the refusal; ``frees_at`` (UTC) is when the oldest unit is expected to free up,
    or None when OpenD did not say when it was used.
    """

    def __init__(
        self, error: OpenDError, *, code: str, used: int, remain: int, frees_at: Any
    ) -> None:
        super().__init__(
            proto_id=error.proto_id,
            ret_type=error.ret_type,
            err_code=error.err_code,
            ret_msg=error.ret_msg,
        )
        self.code = code
        self.used = used
        self.remain = remain
        self.frees_at = frees_at
        when = f"; the oldest unit frees up about {frees_at:%Y-%m-%d %H:%M} UTC" if frees_at else ""
        self.args = (
            f"history K-line quota exhausted: {used} securities used, {remain} left, so {code} "
            f"cannot be requested{when} (OpenD: {error.ret_msg or 'no message'})",
        )
