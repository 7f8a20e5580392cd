"""OpenD's Notify (1003) pushes surface on the state iterator; a regained upstream resubscribes."""

from __future__ import annotations

import anyio
import pytest

import aiofutu
from aiofutu import ClientState, SubType
from aiofutu._codec import encode_frame
from aiofutu._pb import notify_pb2, qot_sub_pb2

from .scripted import scripted

pytestmark = pytest.mark.anyio


def notify(**fields: object) -> bytes:
    resp = notify_pb2.Response(retType=0)
    resp.s2c.type = 0
    for name, value in fields.items():
        getattr(resp.s2c, name).CopyFrom(value)  # type: ignore[attr-defined]
    return encode_frame(1003, 0, resp.SerializeToString())


async def test_upstream_loss_and_return_and_gateway_events() -> None:
    subs: list[bytes] = []

    def handler(proto_id: int, serial: int, body: bytes) -> bytes:
        if proto_id == 3001:
            subs.append(body)
        return encode_frame(proto_id, serial, qot_sub_pb2.Response(retType=0).SerializeToString())

    async with scripted(handler) as srv, aiofutu.connect("127.0.0.1", srv.port) as client:
        await client.subscribe(["HK.00700"], [SubType.TICKER])
        assert len(subs) == 1
        watch = client.state_changes()
        assert (await watch.__anext__()).upstream is True

        down = notify_pb2.ConnectStatus(qotLogined=False, trdLogined=False)
        await srv.inject(notify(connectStatus=down))
        with anyio.fail_after(5):
            change = await watch.__anext__()
        assert change.state is ClientState.READY
        assert change.upstream is False
        assert "lost" in (change.cause or "")
        assert client.stats()["upstream"] is False

        up = notify_pb2.ConnectStatus(qotLogined=True, trdLogined=False)
        await srv.inject(notify(connectStatus=up))
        with anyio.fail_after(5):
            change = await watch.__anext__()
        assert change.upstream is True
        assert "regained" in (change.cause or "")
        with anyio.fail_after(5):
            while len(subs) < 2:  # noqa: ASYNC110 - the resubscription runs in the background
                await anyio.sleep(0.01)
        again = qot_sub_pb2.Request()
        again.ParseFromString(subs[1])
        assert [s.code for s in again.c2s.securityList] == ["00700"]
        assert list(again.c2s.subTypeList) == [SubType.TICKER.wire]

        kicked = notify_pb2.GtwEvent(eventType=7, desc="logged in elsewhere")
        await srv.inject(notify(event=kicked))
        with anyio.fail_after(5):
            change = await watch.__anext__()
        assert change.cause == "OpenD event KickedOut: logged in elsewhere"

        await srv.inject(encode_frame(1003, 0, b"\xff\xff"))  # a Notify that does not parse
        assert client.connected
        await watch.aclose()
