"""Hostile OpenPGP submissions, each with the quarantine reason it must
get: made by the real gpg (and by hand where gpg refuses), shared by the
ingest tests and the GnuPG-version test."""

import atexit
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile

from gpgkeys import make_keys, stop_agents
from server_fixtures import encryptor, make_report, stranger

GOOD = make_report("0f8e1c52-1b9a-4a0e-8c3d-5e6f7a8b9c0d")


def gpg(home, *args, data):
    """stdout of gpg in `home` with `data` on stdin."""
    return subprocess.run(
        ["gpg", "--homedir", home, "--batch", "--yes", "--trust-model",
         "always", "--pinentry-mode", "loopback", *args], input=data,
        capture_output=True, check=True).stdout


@functools.cache
def signer():
    """A GNUPGHOME with a signing key (the server's own can only certify),
    its agent stopped and its directory removed at exit."""
    top = tempfile.mkdtemp(prefix="ppc-signer-")
    atexit.register(shutil.rmtree, top, ignore_errors=True)
    keys = make_keys(top, "signer")
    atexit.register(stop_agents, [keys])
    return keys.home


def damaged(ciphertext, offset):
    """`ciphertext` with one bit flipped `offset` bytes before its end."""
    data = bytearray(ciphertext)
    data[len(data) - offset] ^= 0x01
    return bytes(data)


def session_key_damaged(message):
    """A binary `message` with the last byte of its first packet, the
    session key for the server's key, flipped: gpg cannot open it."""
    assert message[0] == 0x84, message[:2]  # tag 1, a one-byte length
    return damaged(message, len(message) - 1 - message[1])


def binary(plaintext, *args):
    """An unarmored message to the server key."""
    enc = encryptor()
    return gpg(enc.home, "--recipient", enc.fingerprint, *args, "--encrypt",
               data=plaintext)


def _packet(tag, body):
    """An OpenPGP packet, new format (RFC 4880, 4.2)."""
    n = len(body)
    if n < 192:
        return bytes([0xC0 | tag, n]) + body
    return bytes([0xC0 | tag, ((n - 192) >> 8) + 192, (n - 192) & 0xFF]) + body


def symmetric(plaintext, passphrase):
    """A message encrypted with `passphrase`, made by hand: gpg refuses to
    make one with the empty passphrase.  AES-128 from a salted SHA-256 S2K,
    integrity protected (RFC 4880, 5.3, 5.13)."""
    salt = os.urandom(8)
    key = hashlib.sha256(salt + passphrase).digest()[:16]
    prefix = os.urandom(16)
    body = prefix + prefix[14:] + _packet(11, b"b\0\0\0\0\0" + plaintext)
    body += b"\xd3\x14"
    body += hashlib.sha1(body).digest()
    encrypted = subprocess.run(
        ["openssl", "enc", "-aes-128-cfb", "-K", key.hex(), "-iv", "00" * 16,
         "-nopad"], input=body, capture_output=True, check=True).stdout
    return (_packet(3, bytes([4, 7, 1, 8]) + salt)
            + _packet(18, b"\1" + encrypted))


# Each kind of hostile OpenPGP: (reason, how to make it).
OPENPGP = {
    "garbage": ("not-openpgp", lambda: b"\x00\xffnot OpenPGP\n" * 50),
    "armored-garbage": ("not-openpgp", lambda: (
        b"-----BEGIN PGP MESSAGE-----\n\n" + b"hQEMA0FBQUFBQUFBQUFBQUFB\n" * 4
        + b"=AAAA\n-----END PGP MESSAGE-----\n")),
    "empty": ("not-openpgp", lambda: b""),
    "literal-only": ("not-encrypted", lambda: gpg(
        encryptor().home, "--armor", "--store", data=GOOD)),
    "signed-only": ("signed", lambda: gpg(
        signer(), "--armor", "--sign", data=GOOD)),
    "clearsigned": ("signed", lambda: gpg(
        signer(), "--clearsign", data=GOOD)),
    # A costly key derivation (the largest count): never attempted.  (In
    # the signer's home: its agent is stopped at exit.)
    "symmetric": ("symmetric", lambda: gpg(
        signer(), "--armor", "--passphrase", "secret",
        "--s2k-count", "65011712", "--symmetric", data=GOOD)),
    # The empty passphrase, which ingest's gpg is given: still refused.
    "symmetric-empty": ("symmetric", lambda: symmetric(GOOD, b"")),
    "to-another-key": ("wrong-key", lambda: stranger().encrypt(GOOD)),
    "to-a-hidden-key": ("wrong-key", lambda: gpg(
        stranger().home, "--armor", "--hidden-recipient",
        stranger().fingerprint, "--encrypt", data=GOOD)),
    "cut-short": ("undecryptable",
                  lambda: encryptor().encrypt(GOOD)[:200]),
    # To the server's key as a hidden recipient: only gpg's DECRYPTION_KEY
    # says it was to this server.
    "to-us-hidden-cut-short": ("undecryptable", lambda: gpg(
        encryptor().home, "--armor", "--hidden-recipient",
        encryptor().fingerprint, "--encrypt", data=GOOD)[:200]),
    # gpg 2.4 says NO_SECKEY for the server's own key here.
    "session-key-damaged": ("undecryptable",
                            lambda: session_key_damaged(binary(GOOD))),
    "bit-flipped": ("undecryptable",
                    lambda: damaged(binary(GOOD, "--compress-algo", "none"),
                                    40)),
    # The zlib checksum just before the MDC packet: gpg's "Fatal: zlib
    # inflate problem" ends the whole process, not just this file.
    "zlib-fatal": ("undecryptable", lambda: damaged(
        binary(GOOD, "--compress-algo", "zlib"), 24)),
    "nested-armored": ("nested", lambda: encryptor().encrypt(
        encryptor().encrypt(GOOD))),
    "nested-binary": ("nested", lambda: encryptor().encrypt(binary(GOOD))),
    # 20 MB of zeros in a 1 KiB message: gpg is stopped at 64 KiB.
    "compression-bomb": ("too-large", lambda: binary(
        b"\0" * 20_000_000, "--compress-algo", "bzip2", "-z", "9")),
}
