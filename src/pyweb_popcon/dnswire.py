"""Submission over DNS: the query names and answers client and server share.

A binary OpenPGP message is cut into chunks; each chunk is one A query
for a name under the submission zone:

    DATA[.DATA...].HEADER.ZONE

HEADER is one label, the lower-case base32 (no padding) of 16 bytes: a
random message ID (10 bytes, new for each submission, never the host
ID), the chunk's index and the count of chunks (2 bytes each, big-endian),
the attempt (1 byte: a retried chunk gets a name of its own, so no cache
holds an earlier answer for it) and the number of payload bytes (1).
The DATA labels, read left to right, are the payload in lower-case base32,
at most 63 characters each; the whole name stays within 253.  Decoding
ignores case: resolvers may randomise it (draft-vixie-dnsext-dns0x20).

Every proper suffix of a chunk's name below the zone (HEADER.ZONE, and
with only some of the DATA labels) is an empty non-terminal: a resolver
minimising its query names (RFC 9156) asks for those first, and must hear
that they exist, or it gives up on everything below them (RFC 8020).

The answer is one address, 127.CODE.H.H, where H.H are the first two
bytes of the SHA-256 of the query name in lower case: an answer from
anything but the server (a resolver that sinks names to 127.0.0.1 or
0.0.0.0) does not match, so it is never taken for an acknowledgement.
"""

import base64
import binascii
import enum
import hashlib
import struct
from dataclasses import dataclass

MESSAGE_ID_BYTES = 10
MAX_NAME = 253              # characters, without the final dot
MAX_LABEL = 63
MAX_PAYLOAD = 255           # bytes in one chunk: one byte says how many
MAX_ATTEMPT = 255
_HEADER = struct.Struct(">10sHHBB")
HEADER_CHARS = 26           # base32 of the 16-byte header, unpadded


class Code(enum.IntEnum):
    """What the server says about a chunk (the answer's second byte)."""
    STORED = 1              # kept; the message is not complete yet
    COMPLETE = 2            # the whole message is in the spool
    BUSY = 3                # not taken now (spool or memory full): later
    REFUSED = 4             # the message can never be taken


@dataclass(frozen=True)
class Chunk:
    message_id: bytes
    index: int
    count: int
    attempt: int
    payload: bytes


PARTIAL = "partial"         # parse(): a proper suffix of a chunk's name


def encode(data):
    """`data` in lower-case base32 without padding."""
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def decode(text):
    """The bytes of lower- or upper-case unpadded base32; ValueError."""
    text = text.upper()
    if len(text) % 8 in (1, 3, 6):
        raise ValueError("not a base32 length")
    try:
        data = base64.b32decode(text + "=" * (-len(text) % 8))
    except binascii.Error as e:
        raise ValueError(str(e)) from None
    if encode(data) != text.lower():      # padding bits must be zero
        raise ValueError("not canonical base32")
    return data


def _chars(size):
    """Base32 characters for `size` bytes."""
    return (size * 8 + 4) // 5


def capacity(zone):
    """Payload bytes in one query name under `zone`."""
    # DATA labels, each with its dot, then HEADER.ZONE.
    room = MAX_NAME - len(zone) - 1 - HEADER_CHARS
    size = MAX_PAYLOAD
    while size and (_chars(size) + -(-_chars(size) // MAX_LABEL)) > room:
        size -= 1
    if size == 0:
        raise ValueError(f"the zone {zone} is too long for DNS submission")
    return size


def split(message, zone):
    """`message` as the payloads of its chunks under `zone`."""
    size = capacity(zone)
    return [message[i:i + size] for i in range(0, len(message), size)]


def query_name(zone, message_id, index, count, attempt, payload):
    """The name that carries `payload`, chunk `index` of `count`."""
    header = encode(_HEADER.pack(message_id, index, count, attempt,
                                 len(payload)))
    data = encode(payload)
    labels = [data[i:i + MAX_LABEL] for i in range(0, len(data), MAX_LABEL)]
    return ".".join(labels + [header, zone])


def parse(qname, zone):
    """A Chunk, PARTIAL, or None (no name of this protocol) for `qname`
    (with or without the final dot), a name strictly below `zone`."""
    name = qname.rstrip(".").lower()
    suffix = "." + zone.lower()
    if not name.endswith(suffix):
        return None
    labels = name[:-len(suffix)].split(".")
    try:
        header = decode(labels[-1])
    except ValueError:
        return None
    if len(header) != _HEADER.size:
        return None
    message_id, index, count, attempt, size = _HEADER.unpack(header)
    if not (index < count and size):
        return None
    data = "".join(labels[:-1])
    wanted = _chars(size)
    if any(not 0 < len(label) <= MAX_LABEL for label in labels[:-1]):
        return None
    if len(data) < wanted:
        return PARTIAL
    try:
        payload = decode(data)
    except ValueError:
        return None
    if len(payload) != size:
        return None
    return Chunk(message_id, index, count, attempt, payload)


def _check(qname):
    name = qname.rstrip(".").lower().encode("ascii")
    return hashlib.sha256(name).digest()[:2]


def answer(qname, code):
    """The address that answers `qname` with `code`."""
    h = _check(qname)
    return f"127.{int(code)}.{h[0]}.{h[1]}"


def code(qname, address):
    """The Code an answer `address` gives for `qname`, or None when it is
    no answer of this protocol to this name."""
    for c in Code:
        if address == answer(qname, c):
            return c
    return None
