"""What an OpenPGP message looks like from outside: the armor, its base64
and the first packet's tag, nothing a key is needed for.

The one armor reader of both sides: the client de-armors its ciphertext
to send it over DNS; the receivers check what strangers send, by hand
because they must never load GnuPG; ingest checks what a message
decrypts to (a message inside one).
"""

import base64
import binascii
import re

_ARMOR = re.compile(
    rb"\s*-----BEGIN PGP MESSAGE-----\r?\n"
    rb"(?:[A-Za-z][A-Za-z0-9-]*: [^\r\n]*\r?\n)*"   # armor headers
    rb"\r?\n"
    rb"(?P<body>(?:[A-Za-z0-9+/][A-Za-z0-9+/=]*\r?\n)+)"
    rb"(?:=[A-Za-z0-9+/]{4}\r?\n)?"                # CRC-24
    rb"-----END PGP MESSAGE-----\s*")

# Packet tags an encrypted message starts with: a public-key (1) or a
# symmetric-key (3) encrypted session key.
_SESSION_KEY_TAGS = (1, 3)


def dearmor(armored):
    """The binary packets of the ASCII-armored message `armored` (bytes);
    ValueError when it is none."""
    m = _ARMOR.fullmatch(armored)
    if not m:
        raise ValueError("not an ASCII-armored OpenPGP message")
    # The CRC-24 is not checked: OpenPGP checks its own integrity.
    try:
        return base64.b64decode(re.sub(rb"\s", b"", m.group("body")),
                                validate=True)
    except binascii.Error as e:
        raise ValueError(f"the armor's base64 is damaged: {e}") from None


def is_armored_message(body):
    """True when `body` looks like an ASCII-armored encrypted message."""
    try:
        return _starts_with_session_key(dearmor(body))
    except ValueError:
        return False


def is_encrypted_message(data):
    """True when `data` looks like an encrypted message, armored or not."""
    return is_armored_message(data) or _starts_with_session_key(data)


def _starts_with_session_key(data):
    if not data or not data[0] & 0x80:
        return False
    # New-format packets keep the tag in the low six bits, old-format
    # packets in bits 5..2.
    tag = data[0] & 0x3F if data[0] & 0x40 else (data[0] >> 2) & 0x0F
    return tag in _SESSION_KEY_TAGS
