"""Publish the OpenD feed to NATS JetStream: ``aiofutu bridge`` and :func:`run`.

Subjects ``futu.<kind>.<market>.<code>``, one message per tick, OpenD's protobuf ``Ticker``
bytes as the body, de-duplicated by ``Nats-Msg-Id``: the contract is in docs/bridge.md and in
:mod:`aiofutu.bridge._subjects`. Needs the ``nats`` extra and anyio's asyncio backend.
"""

from __future__ import annotations

from ._publisher import Bridge, BridgeStats, parse_duration, parse_size, run
from ._subjects import (
    KINDS,
    MalformedMessage,
    decode_ticker,
    decode_token,
    encode_ticker,
    encode_token,
    parse_subject,
    subject,
    ticker_msg_id,
)

__all__ = (
    "KINDS",
    "Bridge",
    "BridgeStats",
    "MalformedMessage",
    "decode_ticker",
    "decode_token",
    "encode_ticker",
    "encode_token",
    "parse_duration",
    "parse_size",
    "parse_subject",
    "run",
    "subject",
    "ticker_msg_id",
)
