"""Encrypted sessions (RSA InitConnect, AES bodies) against an encrypting scripted OpenD."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
import pytest

import aiofutu
import aiofutu.sim
from aiofutu._codec import FrameDecoder, encode_frame
from aiofutu._crypto import AesCipher, RsaKey, generate_private_key_pem
from aiofutu._pb import init_connect_pb2, keep_alive_pb2
from aiofutu.testing import opend_config

pytestmark = pytest.mark.anyio

AES_KEY = "0123456789ABCDEF"
AES_IV = "fedcba9876543210"


@pytest.fixture(scope="module")
def pem() -> bytes:
    return generate_private_key_pem(1024)


@asynccontextmanager
async def encrypted_opend(
    pem: bytes, *, mode: str = "cbc", expect_encrypted: bool = True
) -> AsyncIterator[int]:
    """A minimal OpenD that requires (or refuses) encryption, for KeepAlive only."""
    rsa = RsaKey(pem)
    aes = AesCipher(AES_KEY, AES_IV if mode == "cbc" else None)

    def decrypt(proto_id: int, body: bytes) -> bytes:
        return rsa.decrypt(body) if proto_id == 1001 else aes.decrypt(body)

    async def serve_one(stream: anyio.abc.SocketStream) -> None:
        decoder = FrameDecoder()
        if expect_encrypted:
            decoder.decrypt = decrypt
        async with stream:
            try:
                while True:
                    decoder.feed(await stream.receive())
                    try:
                        frames = list(decoder)
                    except aiofutu.RemoteProtocolError:
                        # cannot read the InitConnect: answer in plain text, as a gateway would
                        failed = init_connect_pb2.Response(retType=-1, retMsg="decode failed")
                        await stream.send(encode_frame(1001, 1, failed.SerializeToString()))
                        return
                    for frame in frames:
                        if frame.proto_id == 1001:
                            req = init_connect_pb2.Request()
                            req.ParseFromString(frame.body)
                            resp = init_connect_pb2.Response(retType=0)
                            s2c = resp.s2c
                            s2c.serverVer, s2c.loginUserID, s2c.connID = 1011, 1, 9
                            s2c.connAESKey, s2c.keepAliveInterval = AES_KEY, 30
                            if mode == "cbc":
                                s2c.aesCBCiv = AES_IV
                            enc = rsa.encrypt if expect_encrypted else None
                            await stream.send(
                                encode_frame(
                                    1001, frame.serial, resp.SerializeToString(), encrypt=enc
                                )
                            )
                        elif frame.proto_id == 1004:
                            ka = keep_alive_pb2.Response(retType=0)
                            ka.s2c.time = 77
                            await stream.send(
                                encode_frame(
                                    1004, frame.serial, ka.SerializeToString(), encrypt=aes.encrypt
                                )
                            )
            except (anyio.EndOfStream, anyio.BrokenResourceError, aiofutu.FutuError):
                pass

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve_one)
        yield port
        tg.cancel_scope.cancel()


async def keepalive(client: aiofutu.Client) -> int:
    req = keep_alive_pb2.Request()
    req.c2s.time = 1
    return int((await client.request(1004, req, timeout=2)).s2c.time)


@pytest.mark.parametrize("mode", ["cbc", "ecb"])
async def test_encrypted_session(pem: bytes, tmp_path: Path, mode: str) -> None:
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(pem)
    async with encrypted_opend(pem, mode=mode) as port:
        for key in (key_file, str(key_file), pem):
            async with aiofutu.connect("127.0.0.1", port, rsa_private_key=key) as client:
                assert await keepalive(client) == 77
                assert await keepalive(client) == 77


async def test_wrong_key_is_a_clear_connect_error(pem: bytes) -> None:
    other = generate_private_key_pem(1024)
    async with encrypted_opend(pem) as port:
        with pytest.raises(aiofutu.ConnectError, match="RSA key"):
            async with aiofutu.connect("127.0.0.1", port, rsa_private_key=other, connect_timeout=2):
                pass


async def test_client_encrypts_but_opend_does_not(pem: bytes) -> None:
    async with encrypted_opend(pem, expect_encrypted=False) as port:
        with pytest.raises(aiofutu.ConnectError, match="without encryption"):
            async with aiofutu.connect("127.0.0.1", port, rsa_private_key=pem, connect_timeout=2):
                pass


async def test_opend_encrypts_but_client_does_not(pem: bytes) -> None:
    async with encrypted_opend(pem) as port:
        with pytest.raises(aiofutu.ConnectError, match="rsa_private_key"):
            async with aiofutu.connect("127.0.0.1", port, connect_timeout=1):
                pass


async def test_key_file_that_does_not_parse(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(aiofutu.ConfigurationError, match="cannot read an RSA private key"):
        async with aiofutu.connect(rsa_private_key=bad):
            pass
    with pytest.raises(aiofutu.ConfigurationError, match="cannot read RSA key file"):
        async with aiofutu.connect(rsa_private_key=tmp_path / "missing.pem"):
            pass
    with pytest.raises(aiofutu.ConfigurationError, match="cannot read an RSA private key"):
        aiofutu.connect(rsa_private_key=b"not a key")
    with pytest.raises(aiofutu.ConfigurationError, match="rsa_private_key"):
        aiofutu.connect(rsa_private_key=1234)  # type: ignore[arg-type]


@pytest.mark.parametrize("bits", [1024, 2048])
def test_rsa_chunks_by_key_size(bits: int) -> None:
    key = RsaKey(generate_private_key_pem(bits))
    message = bytes(range(256)) * 3
    cipher = key.encrypt(message)
    assert len(cipher) % (bits // 8) == 0
    assert key.decrypt(cipher) == message


def test_aes_ecb_trailer_layout() -> None:
    ecb = AesCipher(AES_KEY, None)
    fifteen = ecb.encrypt(b"a" * 15)
    assert len(fifteen) == 32
    assert fifteen[-16:] == bytes(15) + b"\x0f"
    sixteen = ecb.encrypt(b"a" * 16)
    assert len(sixteen) == 32
    assert sixteen[-16:] == bytes(16)
    for n in range(40):
        assert ecb.decrypt(ecb.encrypt(bytes(range(n)))) == bytes(range(n))


def test_aes_cbc_fixed_iv_per_packet() -> None:
    cbc = AesCipher(AES_KEY, AES_IV)
    assert cbc.encrypt(b"same") == cbc.encrypt(b"same")  # no chaining across packets
    assert len(cbc.encrypt(b"x" * 16)) == 32  # a whole padding block when aligned
    with pytest.raises(ValueError, match="padding"):
        AesCipher("ABCDEF0123456789", AES_IV).decrypt(cbc.encrypt(b"hello"))


_FIXTURE_KEY = generate_private_key_pem(1024)


@opend_config(rsa_key=_FIXTURE_KEY, aes_mode="ecb")
async def test_testing_fixtures_follow_an_encrypted_simulator(
    opend: aiofutu.sim.Simulator, client: aiofutu.Client
) -> None:
    assert opend.encrypted
    await client.subscribe(["HK.00700"], [aiofutu.SubType.TICKER])
    ticks = await client.get_rt_ticker("HK.00700", 20)
    assert [t.sequence for t in ticks] == [
        t.sequence for t in opend.market.history("HK.00700")[-20:]
    ]
