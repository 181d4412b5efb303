"""SPDY/3.1 framing and sessions (kubelet/server/streaming/spdy.py): wire round-trips, the zlib dictionary, stream
lifecycle and flow control, over an in-memory pipe."""
from __future__ import annotations

import asyncio
import hashlib
import struct
import zlib

import pytest

from kubelet.server.streaming import spdy
from kubelet.server.streaming.spdy import (DataFrame, GoAway, HeaderCodec, Headers, Ping, RstStream, Settings,
                                           SpdyError, SpdySession, SynReply, SynStream, WindowUpdate, parse_frame,
                                           render_frame)

FRAMES = [
    DataFrame(stream_id=1, data=b"hello"),
    DataFrame(stream_id=3, data=b"", fin=True),
    DataFrame(stream_id=0x7FFFFFFF, data=b"x" * 70000),
    SynStream(stream_id=1, headers={"streamtype": "error", "port": "80", "requestid": "0"}),
    SynStream(stream_id=5, associated_to=3, priority=7, headers={}, fin=True, unidirectional=True),
    SynReply(stream_id=1),
    SynReply(stream_id=2, headers={"a": "b\x00c"}, fin=True),
    Headers(stream_id=7, headers={"x-more": "yes"}),
    RstStream(stream_id=9, status=spdy.CANCEL),
    Settings(entries=((0, spdy.SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20), (1, 4, 100)), clear=True),
    Ping(id=1),
    GoAway(last_good_stream_id=11, status=2),
    WindowUpdate(stream_id=0, delta=32768),
    WindowUpdate(stream_id=3, delta=1),
]


def test_every_frame_round_trips_through_one_compression_context() -> None:
    tx, rx = HeaderCodec(), HeaderCodec()
    wire = b"".join(render_frame(f, tx) for f in FRAMES)
    got, buf = [], bytearray(wire)
    while (r := parse_frame(buf, rx)) is not None:
        frame, used = r
        del buf[:used]
        got.append(frame)
    assert got == FRAMES and not buf


def test_wire_layout_of_a_data_frame_and_a_syn_reply() -> None:
    assert render_frame(DataFrame(stream_id=3, data=b"ab", fin=True), HeaderCodec()) == b"\x00\x00\x00\x03\x01\x00\x00\x02ab"
    raw = render_frame(SynReply(stream_id=1), HeaderCodec())
    assert raw[:4] == b"\x80\x03\x00\x02"  # control bit, version 3, type 2
    assert struct.unpack("!I", raw[4:8])[0] == len(raw) - 8
    assert render_frame(Ping(id=5), HeaderCodec()) == b"\x80\x03\x00\x06\x00\x00\x00\x04\x00\x00\x00\x05"
    assert render_frame(WindowUpdate(stream_id=1, delta=9), HeaderCodec())[8:] == b"\x00\x00\x00\x01\x00\x00\x00\x09"


def test_incomplete_frames_wait_for_more_bytes() -> None:
    wire = render_frame(SynStream(stream_id=1, headers={"streamtype": "data"}), HeaderCodec())
    rx = HeaderCodec()
    for cut in (0, 4, 8, len(wire) - 1):
        assert parse_frame(wire[:cut], rx) is None
    frame, used = parse_frame(wire + b"\x00", rx)  # type: ignore[misc]
    assert used == len(wire) and frame.headers == {"streamtype": "data"}  # type: ignore[union-attr]


def test_the_spdy3_dictionary() -> None:
    assert len(spdy.DICTIONARY) == 1423
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert spdy.DICTIONARY.endswith(b",*,enq=0.")
    assert hashlib.sha256(spdy.DICTIONARY).hexdigest() == "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02"
    block = HeaderCodec().compress({"streamtype": "error"})
    cmf, flg = block[0], block[1]
    assert flg & 0x20, "FDICT must be set: the header stream is primed with the dictionary"
    assert struct.unpack("!I", block[2:6])[0] == zlib.adler32(spdy.DICTIONARY)
    with pytest.raises(zlib.error):
        zlib.decompressobj().decompress(block)  # without the dictionary it cannot be read
    assert zlib.decompressobj(zdict=spdy.DICTIONARY).decompress(block) == spdy.render_header_block({"streamtype": "error"})
    del cmf


def test_header_blocks_share_the_compression_context() -> None:
    tx = HeaderCodec()
    first = tx.compress({"streamtype": "data", "port": "8080", "requestid": "1"})
    second = tx.compress({"streamtype": "data", "port": "8080", "requestid": "1"})
    assert len(second) < len(first)  # the second refers back to the first
    rx = HeaderCodec()
    assert rx.decompress(first) == rx.decompress(second) == {"streamtype": "data", "port": "8080", "requestid": "1"}
    with pytest.raises(SpdyError):
        HeaderCodec().decompress(second)  # out of context


def test_names_are_lowercased_and_bad_input_is_a_protocol_error() -> None:
    assert spdy.parse_header_block(spdy.render_header_block({"StreamType": "x"})) == {"streamtype": "x"}
    with pytest.raises(SpdyError):
        spdy.parse_header_block(b"\x00\x00\x00\x02\x00\x00\x00\x01a")
    with pytest.raises(SpdyError):
        parse_frame(b"\x80\x02\x00\x01\x00\x00\x00\x00", HeaderCodec())  # SPDY/2
    with pytest.raises(SpdyError):
        HeaderCodec().decompress(b"not zlib at all")
    assert parse_frame(b"\x80\x03\x00\x63\x00\x00\x00\x02ab", HeaderCodec()) == (None, 10)  # unknown type: skipped


class Pipe:
    def __init__(self, inbox: asyncio.Queue[bytes], outbox: asyncio.Queue[bytes]) -> None:
        self.inbox, self.outbox, self.sent = inbox, outbox, []

    async def read(self) -> bytes:
        return await self.inbox.get()

    async def write(self, data: bytes) -> None:
        self.sent.append(data)
        await self.outbox.put(data)

    async def close(self) -> None:
        await self.outbox.put(b"")
        await self.inbox.put(b"")


def pair() -> tuple[SpdySession, SpdySession, Pipe, Pipe]:
    a, b = asyncio.Queue(), asyncio.Queue()
    cpipe, spipe = Pipe(a, b), Pipe(b, a)
    return SpdySession(cpipe, client=True), SpdySession(spipe, client=False), cpipe, spipe


async def test_streams_open_reply_carry_data_and_half_close() -> None:
    client, server, _, _ = pair()
    tasks = [asyncio.create_task(client.run()), asyncio.create_task(server.run())]
    s = await client.open_stream({"streamtype": "stdin"})
    assert s.id == 1
    peer = await server.accept()
    assert peer is not None and peer.headers == {"streamtype": "stdin"}
    await peer.reply()
    await s.wait_reply(1)
    await s.write(b"ping" * 10000)  # several data frames
    await s.close()
    assert await peer.read_all() == b"ping" * 10000
    await peer.write(b"pong")
    await peer.close()
    assert await s.read_all() == b"pong"
    assert not client.streams and not server.streams  # both FINs: forgotten on both sides
    assert (await client.open_stream({})).id == 3
    await client.ping(1)
    await client.close()
    await asyncio.wait_for(asyncio.gather(*tasks), 2)
    assert await server.accept() is not None  # stream 3
    assert await server.accept() is None


async def test_reset_ends_both_directions() -> None:
    client, server, _, _ = pair()
    tasks = [asyncio.create_task(client.run()), asyncio.create_task(server.run())]
    s = await client.open_stream({"streamtype": "data"})
    peer = await server.accept()
    assert peer is not None
    await peer.reply()
    await s.wait_reply(1)
    await peer.reset()
    assert await s.read() == b""
    await asyncio.sleep(0)
    with pytest.raises(ConnectionResetError):
        for _ in range(100):
            await s.write(b"x")
            await asyncio.sleep(0)
    await client.close()
    await asyncio.wait_for(asyncio.gather(*tasks), 2)


async def test_a_stream_id_going_backwards_is_refused() -> None:
    client, server, cpipe, _ = pair()
    tasks = [asyncio.create_task(server.run())]
    await cpipe.write(render_frame(SynStream(stream_id=5, headers={}), client.codec))
    await cpipe.write(render_frame(SynStream(stream_id=3, headers={}), client.codec))
    await cpipe.write(render_frame(SynStream(stream_id=4, headers={}), client.codec))  # even: a server id
    assert (await server.accept()).id == 5  # type: ignore[union-attr]
    rx = HeaderCodec()
    frames = []
    while len(frames) < 2:
        r = parse_frame(await cpipe.inbox.get(), rx)
        assert r is not None
        frames.append(r[0])
    assert frames == [RstStream(stream_id=3, status=spdy.PROTOCOL_ERROR), RstStream(stream_id=4, status=spdy.PROTOCOL_ERROR)]
    await cpipe.close()
    await asyncio.wait_for(asyncio.gather(*tasks), 2)


async def test_flow_control_is_enforced_once_the_peer_does_it() -> None:
    """Both ends are ours, so both send WINDOW_UPDATEs: a sender stops at the window and resumes when the reader
    consumes; nothing is lost and nothing is sent beyond the window."""
    client, server, cpipe, _ = pair()
    tasks = [asyncio.create_task(client.run()), asyncio.create_task(server.run())]
    await server._send(WindowUpdate(stream_id=0, delta=0))  # any update says "I do flow control"
    s = await client.open_stream({})
    peer = await server.accept()
    assert peer is not None
    await peer.reply()
    await s.wait_reply(1)
    for _ in range(20):
        if client.flow_control:
            break
        await asyncio.sleep(0.01)
    assert client.flow_control
    payload = bytes(range(256)) * 1024  # 256 KiB: four windows
    writer = asyncio.create_task(s.write(payload))
    await asyncio.sleep(0.05)
    assert not writer.done()  # blocked: the reader has not consumed anything
    sent = sum(len(b) - 8 for b in cpipe.sent if b[0] & 0x80 == 0)
    assert sent == spdy.DEFAULT_WINDOW
    got = bytearray()
    while len(got) < len(payload):
        got += await peer.read()
    await asyncio.wait_for(writer, 2)
    assert bytes(got) == payload
    await client.close()
    await asyncio.wait_for(asyncio.gather(*tasks), 2)


async def test_a_peer_without_flow_control_is_not_stalled() -> None:
    """spdystream (kubectl, containerd) never sends WINDOW_UPDATE: we must not stop after 64 KiB."""
    client, _server, cpipe, spipe = pair()
    task = asyncio.create_task(client.run())
    s = await client.open_stream({})
    await spipe.write(render_frame(SynReply(stream_id=s.id), HeaderCodec()))
    await s.wait_reply(1)
    await asyncio.wait_for(s.write(b"z" * (300 * 1024)), 2)
    assert not client.flow_control
    await client.close()
    await asyncio.wait_for(task, 2)


async def test_the_reader_gives_the_window_back() -> None:
    client, server, _, spipe = pair()
    tasks = [asyncio.create_task(client.run()), asyncio.create_task(server.run())]
    s = await client.open_stream({})
    peer = await server.accept()
    assert peer is not None
    await peer.reply()
    await s.wait_reply(1)
    await s.write(b"q" * 40000)
    got = b""
    while len(got) < 40000:
        got += await peer.read()
    rx = HeaderCodec()
    rx.decompress(spipe.sent[0][12:])  # the SYN_REPLY's header block keeps the decompressor in step
    updates = [f for f, _ in (parse_frame(b, rx) for b in spipe.sent[1:]) if isinstance(f, WindowUpdate)]  # type: ignore[misc]
    assert WindowUpdate(stream_id=s.id, delta=40000) in updates or sum(u.delta for u in updates if u.stream_id == s.id) >= 32768
    assert any(u.stream_id == 0 for u in updates)
    await client.close()
    await asyncio.wait_for(asyncio.gather(*tasks), 2)


async def test_data_before_a_peer_reset_stays_readable() -> None:
    """containerd's streaming server writes an exec's exit status, then resets the error stream."""
    client, _server, _, spipe = pair()
    task = asyncio.create_task(client.run())
    s = await client.open_stream({"streamtype": "error"})
    tx = HeaderCodec()
    await spipe.write(render_frame(SynReply(stream_id=s.id), tx) + render_frame(DataFrame(stream_id=s.id, data=b'{"status":"Failure"}'), tx)
                      + render_frame(RstStream(stream_id=s.id, status=spdy.CANCEL), tx))
    await s.wait_reply(1)
    assert await s.read_all() == b'{"status":"Failure"}'
    await client.close()
    await asyncio.wait_for(task, 2)
