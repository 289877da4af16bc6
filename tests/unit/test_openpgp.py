"""The one armor reader (pyweb_popcon.openpgp) against gpg itself: its
packets are what `gpg --dearmor` makes of gpg's own messages, and a
message passes for encrypted when `gpg --list-packets` says it starts
with an encrypted session key; malformed armor is refused."""

import re
import subprocess

import pytest

from pyweb_popcon import openpgp

DATA = b'{"format": 1}\n'
SESSION_KEY_TAGS = {1, 3}   # RFC 4880 5.1 and 5.3


def gpg(keys, *args, data, check=True):
    return subprocess.run(
        ["gpg", "--homedir", keys.home, "--batch", "--quiet",
         "--trust-model", "always", "--pinentry-mode", "loopback",
         "--passphrase", "test", *args],
        input=data, capture_output=True, check=check, timeout=60).stdout


def first_tag(keys, data):
    """The first packet's tag, as gpg --list-packets reads it."""
    listed = gpg(keys, "--list-packets", data=data, check=False)
    return int(re.search(rb"^# off=0 ctb=\w+ tag=(\d+)", listed,
                         re.M).group(1))


def message(keys, kind):
    """An armored message gpg made: encrypted to the key (with an armor
    header, or with CRLF line ends), to a passphrase, or signed only."""
    to_key = ("--recipient", keys.fingerprint, "--encrypt")
    args = {"encrypted": to_key,
            "commented": ("--comment", "a test", *to_key),
            "crlf": to_key,
            "symmetric": ("--symmetric",),
            "signed": ("--local-user", keys.fingerprint, "--sign")}[kind]
    armored = gpg(keys, "--armor", *args, data=DATA)
    return armored.replace(b"\n", b"\r\n") if kind == "crlf" else armored


@pytest.mark.parametrize("kind", ["encrypted", "commented", "crlf",
                                  "symmetric", "signed"])
def test_as_gpg_reads_it(gpg_keys, kind):
    armored = message(gpg_keys, kind)
    packets = gpg(gpg_keys, "--dearmor", data=armored)
    assert openpgp.dearmor(armored) == packets
    encrypted = first_tag(gpg_keys, packets) in SESSION_KEY_TAGS
    assert encrypted == (kind != "signed")
    assert openpgp.is_armored_message(armored) is encrypted
    assert openpgp.is_encrypted_message(armored) is encrypted
    assert openpgp.is_encrypted_message(packets) is encrypted
    assert openpgp.is_armored_message(packets) is False


def test_binary_from_gpg(gpg_keys):
    packets = gpg(gpg_keys, "--recipient", gpg_keys.fingerprint,
                  "--encrypt", data=DATA)
    assert first_tag(gpg_keys, packets) == 1
    assert openpgp.is_encrypted_message(packets) is True


def _broken(armored):
    """Malformed variants of a good armored message, by name."""
    begin, rest = armored.split(b"\n", 1)
    lines = armored.splitlines(keepends=True)
    body = lines[2]     # the first base64 line, after the blank one
    return {
        "empty": b"",
        "plain text": DATA,
        "no end": armored[:len(armored) // 2],
        "no blank line": begin + b"\n" + rest.lstrip(b"\n"),
        "a public key": armored.replace(b"PGP MESSAGE",
                                        b"PGP PUBLIC KEY BLOCK"),
        "text before": b"Dear server,\n" + armored,
        "a bad header": armored.replace(begin + b"\n",
                                        begin + b"\nno header\n"),
        "not base64": armored.replace(body, b"*" + body[1:]),
        "a byte short": armored.replace(body, body[1:]),
        "not ASCII": armored.replace(body, b"\xc3\xa9" + body[2:]),
    }


@pytest.mark.parametrize("kind", ["empty", "plain text", "no end",
                                  "no blank line", "a public key",
                                  "text before", "a bad header",
                                  "not base64", "a byte short", "not ASCII"])
def test_malformed(gpg_keys, kind):
    broken = _broken(message(gpg_keys, "encrypted"))[kind]
    why = ("the armor's base64 is damaged" if kind == "a byte short"
           else "not an ASCII-armored OpenPGP message")
    with pytest.raises(ValueError, match=why):
        openpgp.dearmor(broken)
    assert openpgp.is_armored_message(broken) is False
