"""Property tests for the frame decoder: any chunking, any corruption."""

from __future__ import annotations

import hashlib
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiofutu import RemoteProtocolError
from aiofutu._codec import HEADER_SIZE, Frame, FrameDecoder, encode_frame

FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

u32 = st.integers(min_value=0, max_value=2**32 - 1)
bodies = st.one_of(st.just(b""), st.binary(max_size=300))
frames_st = st.builds(
    Frame,
    proto_id=u32,
    serial=u32,
    body=bodies,
    fmt=st.integers(0, 255),
    version=st.integers(0, 255),
)
frame_lists = st.lists(frames_st, max_size=8)


def encode_all(frames: list[Frame]) -> bytes:
    return b"".join(
        encode_frame(f.proto_id, f.serial, f.body, fmt=f.fmt, version=f.version) for f in frames
    )


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@FUZZ
@given(frames=frame_lists, cuts=st.lists(st.integers(min_value=0), max_size=40))
def test_any_chunking_decodes_the_same_frames(frames: list[Frame], cuts: list[int]) -> None:
    data = encode_all(frames)
    decoder = FrameDecoder()
    out: list[Frame] = []
    fed = 0
    for chunk in split(data, cuts):
        decoder.feed(chunk)
        fed += len(chunk)
        out.extend(decoder)
        consumed = sum(HEADER_SIZE + len(f.body) for f in out)
        assert decoder.buffered == fed - consumed
    assert out == frames
    assert decoder.buffered == 0
    assert decoder.next_frame() is None
    assert not decoder.broken


@st.composite
def corrupted_streams(draw: st.DrawFn) -> bytes:
    data = bytearray(encode_all(draw(st.lists(frames_st, min_size=1, max_size=5))))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=60))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 50))]
    return bytes(data)


def pull(decoder: FrameDecoder) -> Frame | RemoteProtocolError | None:
    """One ``next_frame()``; a RemoteProtocolError is returned, anything else propagates."""
    try:
        return decoder.next_frame()
    except RemoteProtocolError as exc:
        return exc


def push(decoder: FrameDecoder, chunk: bytes) -> RemoteProtocolError | None:
    try:
        decoder.feed(chunk)
    except RemoteProtocolError as exc:
        return exc
    return None


@FUZZ
@given(
    data=corrupted_streams(),
    cuts=st.lists(st.integers(min_value=0), max_size=10),
    max_body=st.sampled_from([0, 100, 1000, 2**20]),
)
def test_corruption_only_ever_raises_remote_protocol_error(
    data: bytes, cuts: list[int], max_body: int
) -> None:
    decoder = FrameDecoder(max_body=max_body)
    # every next_frame() call either consumes >= 44 bytes, returns None or raises, so the number
    # of calls that do not end a chunk is bounded by the stream length: no infinite loop.
    budget = len(data) // HEADER_SIZE + 1
    fatal: RemoteProtocolError | None = None
    for chunk in split(data, cuts):
        assert push(decoder, chunk) is None  # feed only raises once the decoder is broken
        while (result := pull(decoder)) is not None:
            if isinstance(result, RemoteProtocolError) and not result.recoverable:
                fatal = result
                break
            budget -= 1
            assert budget >= 0, "decoder produced more results than the stream has frames"
            if isinstance(result, Frame):
                assert len(result.body) <= max_body
        if fatal is not None:
            break
    if fatal is not None:
        assert decoder.broken
        again = pull(decoder)
        assert isinstance(again, RemoteProtocolError), "a broken decoder stopped raising"
        assert not again.recoverable
        refused = push(decoder, b"FT")
        assert isinstance(refused, RemoteProtocolError)
    else:
        assert not decoder.broken


@FUZZ
@given(
    frames=st.lists(st.tuples(frames_st, st.booleans()), min_size=1, max_size=8),
    cuts=st.lists(st.integers(min_value=0), max_size=20),
    where=st.integers(0, 19),
)
def test_decoding_continues_after_bad_sha1(
    frames: list[tuple[Frame, bool]], cuts: list[int], where: int
) -> None:
    chunks = []
    for f, bad in frames:
        raw = bytearray(encode_frame(f.proto_id, f.serial, f.body, fmt=f.fmt, version=f.version))
        if bad:
            raw[16 + where] ^= 0xFF  # corrupt one digest byte
        chunks.append(bytes(raw))
    data = b"".join(chunks)

    decoder = FrameDecoder()
    good: list[Frame] = []
    errors: list[RemoteProtocolError] = []
    for chunk in split(data, cuts):
        decoder.feed(chunk)
        while (result := pull(decoder)) is not None:
            if isinstance(result, Frame):
                good.append(result)
            else:
                errors.append(result)
    assert good == [f for f, bad in frames if not bad]
    assert [(e.proto_id, e.serial) for e in errors] == [
        (f.proto_id, f.serial) for f, bad in frames if bad
    ]
    assert all(e.recoverable for e in errors)
    assert decoder.buffered == 0
    assert not decoder.broken


@FUZZ
@given(frames=frame_lists, key=st.integers(1, 255), cuts=st.lists(st.integers(0), max_size=20))
def test_decrypt_hook_round_trip(frames: list[Frame], key: int, cuts: list[int]) -> None:
    def encrypt(body: bytes) -> bytes:
        return bytes(b ^ key for b in body) + hashlib.sha1(body).digest()[:3]

    def decrypt(proto_id: int, wire: bytes) -> bytes:
        return bytes(b ^ key for b in wire[:-3])

    data = b"".join(
        encode_frame(f.proto_id, f.serial, f.body, fmt=f.fmt, version=f.version, encrypt=encrypt)
        for f in frames
    )
    decoder = FrameDecoder()
    decoder.decrypt = decrypt
    out: list[Frame] = []
    for chunk in split(data, cuts):
        decoder.feed(chunk)
        out.extend(decoder)
    assert out == frames
