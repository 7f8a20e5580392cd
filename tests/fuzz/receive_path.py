"""The client's receive path as one function of bytes, shared by the atheris harness and pytest.

Feeds arbitrary bytes through what the connection's reader does with them: the frame decoder,
then the ticker push router (with a live stream attached) or the reply decoder. Only aiofutu's
typed errors may come out; anything else is a bug.
"""

from __future__ import annotations

from typing import Any

from aiofutu._codec import FrameDecoder
from aiofutu._protocol import RESPONSE_TYPES, decode_response
from aiofutu.errors import FutuError, RemoteProtocolError
from aiofutu.quotes._ticker_router import TickerRouter
from aiofutu.streams import TickerStream


class _NoClient:
    """Stands in for the client: the router never calls back into it."""


def receive_path(data: bytes, chunk: int = 7) -> dict[str, Any]:
    """Push ``data`` through decoder, router and reply parsing in ``chunk``-byte reads."""
    decoder = FrameDecoder(max_body=1 << 16)
    router = TickerRouter()
    stream = TickerStream(_NoClient(), ("HK.00700", "US.AAPL"), buffer=64)  # type: ignore[arg-type]
    router.attach(stream)
    frames = bad = replies = errors = 0
    for start in range(0, len(data), max(chunk, 1)):
        try:
            decoder.feed(data[start : start + chunk])
        except RemoteProtocolError:
            break  # framing is lost: the connection would close here
        while True:
            try:
                batch = decoder.drain()
            except RemoteProtocolError as exc:
                if not exc.recoverable:
                    return {"frames": frames, "bad": bad, "replies": replies, "errors": errors}
                bad += 1
                continue
            if not batch:
                break
            pushes = []
            for frame in batch:
                frames += 1
                if frame.proto_id == 3011:
                    pushes.append(frame)
                    continue
                rtype = RESPONSE_TYPES.get(frame.proto_id)
                if rtype is None:
                    continue
                try:
                    decode_response(rtype, frame.body, frame.proto_id, frame.serial)
                    replies += 1
                except FutuError:
                    errors += 1
            if pushes:
                router.dispatch_batch(pushes)  # as the connection does: a batch per read
        router.flush()
    stream.drain()
    return {"frames": frames, "bad": bad, "replies": replies, "errors": errors}
