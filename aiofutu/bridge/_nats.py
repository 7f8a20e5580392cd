"""nats-py, imported lazily (the ``nats`` extra), and the asyncio-only rule."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..errors import ConfigurationError, MissingDependency

__all__ = ("connect_nats", "import_nats", "require_asyncio")

logger = logging.getLogger("aiofutu.nats")


def import_nats() -> Any:
    """The ``nats`` package; MissingDependency naming the extra when it is not installed."""
    try:
        import nats
        import nats.errors
        import nats.js.api
        import nats.js.errors
    except ImportError:
        raise MissingDependency(
            'the NATS bridge and bus need nats-py: pip install "aiofutu[nats]"'
        ) from None
    return nats


def require_asyncio(what: str) -> None:
    """nats-py runs on asyncio only: refuse trio (or no loop) with a clear error."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise ConfigurationError(
            f"{what} needs anyio's asyncio backend (nats-py is asyncio-only); "
            "run it with anyio.run(..., backend='asyncio') or asyncio.run"
        ) from None


def parse_header_lines(raw: bytes) -> dict[str, str]:
    """nats-py's ``Client._parse_header_lines``, the same result, about twice as fast.

    nats-py tests each header name for whitespace one character at a time in a generator; here
    ``str.split()`` (the same whitespace) does it in C. Installed on the connections that
    :func:`connect_nats` opens (bus messages carry six headers); tests hold the two equal.
    """
    out: dict[str, str] = {}
    for line in raw.split(b"\r\n"):
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        try:
            key = name.strip().decode("ascii")
        except UnicodeDecodeError:
            continue
        if key and key.split() != [key]:  # whitespace inside the name: not a header
            continue
        out[key] = value.strip().decode("utf-8", "replace")
    return out


def is_connection(value: object) -> bool:
    """Whether ``value`` is a nats-py connection (duck-typed: it has ``jetstream()``)."""
    return hasattr(value, "jetstream") and hasattr(value, "is_connected")


async def connect_nats(url: str, name: str, connect_timeout: float = 5.0) -> Any:
    """A nats-py connection that reconnects forever (nats-py handles the reconnects).

    Its state is logged in one line per change (``aiofutu.nats``): lost, back; the failed
    attempts in between only at DEBUG (nats-py's own handler prints a traceback for each).
    """
    nats = import_nats()
    if not isinstance(url, str) or not url:
        raise ConfigurationError(f"nats must be a nats:// URL or a nats-py connection, got {url!r}")
    down = False

    link_errors = (nats.errors.StaleConnectionError, nats.errors.ConnectionClosedError, OSError)

    async def on_error(exc: Exception) -> None:
        if down or isinstance(exc, link_errors):  # told once by on_disconnected
            logger.debug("%s: NATS unreachable: %r", name, exc)
        else:
            logger.warning("%s: NATS error: %s", name, exc or type(exc).__name__)

    async def on_disconnected() -> None:
        nonlocal down
        if not down:
            down = True
            logger.warning("%s: NATS connection to %s lost; reconnecting", name, url)

    async def on_reconnected() -> None:
        nonlocal down
        down = False
        logger.warning("%s: NATS connection to %s is back", name, url)

    try:
        nc = await nats.connect(
            url,
            name=name,
            connect_timeout=connect_timeout,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.25,
            allow_reconnect=True,
            error_cb=on_error,
            disconnected_cb=on_disconnected,
            reconnected_cb=on_reconnected,
        )
    except Exception as exc:
        from ..errors import ConnectError

        raise ConnectError(f"cannot connect to NATS at {url}: {exc}") from None
    if callable(getattr(type(nc), "_parse_header_lines", None)):  # ours only, not a caller's
        nc._parse_header_lines = parse_header_lines
    return nc
