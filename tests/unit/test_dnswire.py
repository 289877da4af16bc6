"""The DNS submission wire format (dnswire): chunks survive the trip
through a query name whatever case a resolver gives it, names keep DNS's
limits, and a name that is not one of ours is never taken for a chunk."""

import random

import pytest
from hypothesis import given, settings, strategies as st

from pyweb_popcon import dnswire
from pyweb_popcon.dnswire import Chunk, Code

ZONES = st.sampled_from(["d.example", "dns.pyweb-popcon.debian.net",
                         "x" * 60 + "." + "y" * 59])     # 120: MAX_ZONE


def randomise_case(name, seed):
    """`name` as a resolver using 0x20 (draft-vixie-dnsext-dns0x20) may
    send it on."""
    rng = random.Random(seed)
    return "".join(c.upper() if rng.random() < 0.5 else c for c in name)


@settings(max_examples=300, database=None, deadline=None)
@given(zone=ZONES, message=st.binary(min_size=1, max_size=2000),
       message_id=st.binary(min_size=10, max_size=10),
       attempt=st.integers(0, dnswire.MAX_ATTEMPT),
       seed=st.integers(), final_dot=st.booleans())
def test_every_chunk_comes_back_whatever_the_case(zone, message, message_id,
                                                  attempt, seed, final_dot):
    payloads = dnswire.split(message, zone)
    assert b"".join(payloads) == message
    for index, payload in enumerate(payloads):
        name = dnswire.query_name(zone, message_id, index, len(payloads),
                                  attempt, payload)
        assert name == name.lower()
        assert len(name) <= dnswire.MAX_NAME
        assert all(0 < len(label) <= dnswire.MAX_LABEL
                   for label in name.split("."))
        asked = randomise_case(name, seed) + "." * final_dot
        assert dnswire.parse(asked, zone.upper()) == Chunk(
            message_id, index, len(payloads), attempt, payload)
        # The server answers the name as it came; the client checks the
        # answer against the name as it asked it.
        for code in Code:
            assert dnswire.code(name, dnswire.answer(asked, code)) == code


@pytest.mark.parametrize("zone", ["d.example", "x" * 60 + "." + "y" * 59])
def test_a_full_chunk_fills_the_name_to_the_limit(zone):
    size = dnswire.capacity(zone)
    name = dnswire.query_name(zone, bytes(10), 0, 1, 0, bytes(size))
    bigger = dnswire.query_name(zone, bytes(10), 0, 1, 0, bytes(size + 1))
    assert len(name) <= dnswire.MAX_NAME < len(bigger) \
        or size == dnswire.MAX_PAYLOAD
    assert max(len(label) for label in name.split(".")) == dnswire.MAX_LABEL


def test_a_zone_too_long_for_any_data_is_named():
    with pytest.raises(ValueError, match="too long"):
        dnswire.capacity(".".join(["z" * 63] * 3) + "." + "z" * 36)


def test_every_suffix_below_the_zone_is_partial():
    """What a resolver minimising its query names (RFC 9156) asks first:
    the labels from the right, one more each time."""
    zone = "d.example"
    name = dnswire.query_name(zone, bytes(range(10)), 3, 9, 1,
                              bytes(range(150)))
    labels = name[:-len(zone) - 1].split(".")
    assert len(labels) >= 4
    for keep in range(1, len(labels)):
        suffix = ".".join(labels[-keep:] + [zone])
        assert dnswire.parse(suffix, zone) is dnswire.PARTIAL, suffix


@pytest.mark.parametrize("qname", [
    "d.example", "www.d.example", "example", "other.example",
    "a.b.c.d.example", "_dmarc.d.example",
    # A header that decodes, but says chunk 5 of 5, or 0 bytes.
    dnswire.encode(bytes(10) + b"\0\5\0\5\0\1") + ".d.example",
    dnswire.encode(bytes(10) + b"\0\0\0\1\0\0") + ".d.example",
    # Base32 that is not canonical (non-zero padding bits): "ab" is not
    # what any byte encodes to.
    "ab." + dnswire.encode(bytes(10) + b"\0\0\0\1\0\1") + ".d.example",
    # Payload longer than the header says.
    dnswire.encode(b"xyz") + "."
    + dnswire.encode(bytes(10) + b"\0\0\0\1\0\1") + ".d.example",
    # Not base32 at all (0, 1, 8, 9 are no base32 digits).
    "0189." + dnswire.encode(bytes(10) + b"\0\0\0\1\0\2") + ".d.example",
])
def test_names_that_are_not_chunks(qname):
    assert dnswire.parse(qname, "d.example") is None


def test_an_answer_from_anything_but_the_server_is_no_acknowledgement():
    name = dnswire.query_name("d.example", bytes(10), 0, 1, 0, b"x")
    other = dnswire.query_name("d.example", bytes(10), 0, 1, 1, b"x")
    for sink in ("127.0.0.1", "0.0.0.0", "127.1.0.0"):
        assert dnswire.code(name, sink) is None
    # An answer meant for another name (another attempt) does not count.
    assert dnswire.code(name, dnswire.answer(other, Code.STORED)) is None


@given(st.binary(max_size=300))
@settings(max_examples=200, database=None)
def test_base32_round_trip(data):
    text = dnswire.encode(data)
    assert set(text) <= set("abcdefghijklmnopqrstuvwxyz234567")
    assert dnswire.decode(text) == data
    assert dnswire.decode(text.upper()) == data
