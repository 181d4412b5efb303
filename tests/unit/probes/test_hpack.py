"""The grpc probe's HPACK: the Huffman table is a complete prefix code and decodes the RFC 7541 examples."""
from __future__ import annotations

from fractions import Fraction

import pytest

from probes._hpack import HUFFMAN_CODES, Decoder, HPACKError, encode_header, encode_int, huffman_decode


def test_huffman_table_is_a_complete_prefix_code() -> None:
    assert len(HUFFMAN_CODES) == 257
    assert sum(Fraction(1, 2 ** bits) for _, bits in HUFFMAN_CODES) == 1
    words = sorted(format(code, f"0{bits}b") for code, bits in HUFFMAN_CODES)
    assert all(not b.startswith(a) for a, b in zip(words, words[1:]))


@pytest.mark.parametrize("hexdata, text", [  # RFC 7541 C.4 / C.6
    ("f1e3c2e5f23a6ba0ab90f4ff", "www.example.com"),
    ("a8eb10649cbf", "no-cache"),
    ("25a849e95ba97d7f", "custom-key"),
    ("25a849e95bb8e8b4bf", "custom-value"),
    ("6402", "302"),
    ("aec3771a4b", "private"),
    ("d07abe941054d444a8200595040b8166e082a62d1bff", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("9d29ad171863c78f0b97c8e9ae82ae43d3", "https://www.example.com"),
])
def test_huffman_rfc_examples(hexdata: str, text: str) -> None:
    assert huffman_decode(bytes.fromhex(hexdata)) == text.encode()


def test_rfc_c3_requests_share_the_dynamic_table() -> None:
    d = Decoder()
    assert d.decode(bytes.fromhex("828684410f7777772e6578616d706c652e636f6d")) == [
        (":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")]
    assert d.decode(bytes.fromhex("828684be58086e6f2d6361636865")) == [
        (":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com"),
        ("cache-control", "no-cache")]


def test_integers_and_our_own_encoding_round_trip() -> None:
    assert encode_int(10, 5) == b"\x0a" and encode_int(1337, 5) == bytes([31, 154, 10])  # RFC C.1
    block = encode_header(":path", "/grpc.health.v1.Health/Check") + encode_header("te", "trailers")
    assert Decoder().decode(block) == [(":path", "/grpc.health.v1.Health/Check"), ("te", "trailers")]


def test_bad_input_raises() -> None:
    with pytest.raises(HPACKError):
        Decoder().decode(b"\xff")
    with pytest.raises(HPACKError):
        huffman_decode(b"\x00")  # padding not all ones
