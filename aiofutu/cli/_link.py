"""How every command that connects as a client reaches OpenD: one set of flags, one helper.

:func:`add_link_flags` adds ``--host``/``--port``, ``--rsa-key``, ``--transport``,
``--websocket-key``, ``--ssl``/``--cafile`` and ``--connect-timeout`` to a subcommand;
:func:`resolve_link` fills them from the environment and checks them before anything
connects (one line, exit status 2); :func:`open_client` is ``aiofutu.connect`` with them.
"""

from __future__ import annotations

import os
import ssl
from typing import TYPE_CHECKING, Any

from .._wsconnection import DEFAULT_PING_INTERVAL, TRANSPORTS, WebSocketOptions
from ..client import DEFAULT_HOST, DEFAULT_PORT, connect
from ._config import UsageError, _number

if TYPE_CHECKING:
    import argparse

    from ..client import Client

__all__ = ("add_link_flags", "connects", "open_client", "resolve_link")

_CONNECT_TIMEOUT = 10.0


def add_link_flags(parser: argparse.ArgumentParser) -> None:
    """The endpoint, encryption and transport flags of a command that connects to OpenD."""
    parser.add_argument("--host", help=f"OpenD host (env AIOFUTU_HOST, default {DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=int, help=f"OpenD port (env AIOFUTU_PORT, default {DEFAULT_PORT}; with "
        "--transport websocket: OpenD's websocket_port)",
    )  # fmt: skip
    parser.add_argument(
        "--rsa-key", metavar="FILE",
        help="OpenD's RSA private key (its rsa_private_key setting; env AIOFUTU_RSA_KEY): "
        "encrypt the connection (default: none, plain text; TCP only)",
    )  # fmt: skip
    parser.add_argument(
        "--transport", choices=TRANSPORTS,
        help="tcp: OpenD's API port; websocket: its WebSocket gateway, as the JavaScript SDK "
        "(env AIOFUTU_TRANSPORT, default tcp)",
    )  # fmt: skip
    parser.add_argument(
        "--websocket-key", metavar="KEY",
        help="the gateway's key in plain text, sent as its MD5 (env AIOFUTU_WEBSOCKET_KEY; "
        "default: none)",
    )  # fmt: skip
    parser.add_argument(
        "--ssl", action="store_true",
        help="websocket: TLS (wss://), checked against the system's CAs (default: off)",
    )  # fmt: skip
    parser.add_argument(
        "--cafile", metavar="FILE",
        help="websocket: TLS, checked against the CA certificates in FILE (PEM; implies --ssl; "
        "default: none)",
    )  # fmt: skip
    parser.add_argument(
        "--connect-timeout", type=_number(above=True), metavar="S",
        help=f"seconds for the connection and its handshake (default {_CONNECT_TIMEOUT:g}; a "
        "gateway with another key never answers, so this is how long that takes to report)",
    )  # fmt: skip
    parser.set_defaults(link_flags=True)


def connects(args: argparse.Namespace) -> bool:
    """Whether the command connects to OpenD as a client (it has the flags)."""
    return bool(getattr(args, "link_flags", False))


def resolve_link(args: argparse.Namespace) -> None:
    """Fill the flags from the environment and check them; raises :class:`UsageError`."""
    env = os.environ
    args.host = args.host or env.get("AIOFUTU_HOST") or DEFAULT_HOST
    if args.port is None:
        raw = env.get("AIOFUTU_PORT") or str(DEFAULT_PORT)
        try:
            args.port = int(raw)
        except ValueError:
            raise UsageError(f"AIOFUTU_PORT must be a port number, got {raw!r}") from None
    args.rsa_key = args.rsa_key or env.get("AIOFUTU_RSA_KEY") or None
    args.transport = args.transport or env.get("AIOFUTU_TRANSPORT") or "tcp"
    if args.transport not in TRANSPORTS:
        raise UsageError(f"AIOFUTU_TRANSPORT must be tcp or websocket, got {args.transport!r}")
    args.websocket_key = args.websocket_key or env.get("AIOFUTU_WEBSOCKET_KEY") or None
    if args.connect_timeout is None:
        args.connect_timeout = _CONNECT_TIMEOUT
    websocket = args.transport == "websocket"
    if not websocket and (args.websocket_key or args.ssl or args.cafile):
        given = "--websocket-key" if args.websocket_key else "--cafile" if args.cafile else "--ssl"
        raise UsageError(
            f"{given} applies to --transport websocket only (OpenD's TCP API has no TLS; its "
            "encryption is --rsa-key)"
        )
    if websocket and args.rsa_key:
        raise UsageError(
            "--rsa-key does not apply to --transport websocket (the gateway has no RSA/AES); "
            "use --ssl or --cafile for TLS"
        )
    args.tls = None
    if args.cafile:
        try:
            args.tls = ssl.create_default_context(cafile=args.cafile)
        except (OSError, ssl.SSLError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise UsageError(f"--cafile {args.cafile}: {reason}") from None
    elif args.ssl:
        args.tls = True
    # what connect() would refuse (and the wsproto extra missing): here, before connecting
    WebSocketOptions.check(
        args.transport,
        args.websocket_key,
        args.tls if websocket else None,
        DEFAULT_PING_INTERVAL,
        encrypted=bool(args.rsa_key),
    )


def open_client(args: argparse.Namespace, client_id: str = "aiofutu-cli", **options: Any) -> Client:
    """``aiofutu.connect`` to the OpenD the flags name (``options``: e.g. ``reconnect=``)."""
    websocket = args.transport == "websocket"
    return connect(
        args.host,
        args.port,
        client_id=client_id,
        rsa_private_key=args.rsa_key,
        connect_timeout=args.connect_timeout,
        transport=args.transport,
        websocket_key=args.websocket_key if websocket else None,
        ssl=args.tls if websocket else None,
        **options,
    )
