"""Encryption with the real gpg and throw-away keys."""

import os
import re
import tempfile

import pytest

from gpgkeys import EXPIRED, make_keys, stop_agents
from pyweb_popcon.client.encrypt import KeyProblem, encrypt

DATA = b'{"format": 1}\n'


@pytest.fixture(scope="module")
def more_keys(tmp_path_factory):
    """A second valid key (rotation, or a stranger) and an expired one."""
    d = str(tmp_path_factory.mktemp("gpg-more"))
    keys = make_keys(d, "next"), make_keys(d, "expired", EXPIRED)
    yield keys
    stop_agents(keys)


def keyring(tmp_path, *keys):
    path = tmp_path / "server-keys.asc"
    path.write_text("".join(open(k.public).read() for k in keys))
    return str(path)


def test_armored_and_for_the_key(gpg_keys, tmp_path):
    armored, recipients = encrypt(DATA, gpg_keys.public,
                                  [gpg_keys.fingerprint])
    assert recipients == (gpg_keys.fingerprint,)
    assert armored.startswith(b"-----BEGIN PGP MESSAGE-----\n")
    assert DATA not in armored
    assert gpg_keys.decrypt(armored) == DATA


def test_to_every_pinned_key_and_no_other(gpg_keys, more_keys, tmp_path):
    following, _ = more_keys
    both = keyring(tmp_path, gpg_keys, following)
    armored, _ = encrypt(DATA, both, [gpg_keys.fingerprint,
                                      following.fingerprint])
    assert gpg_keys.decrypt(armored) == following.decrypt(armored) == DATA
    armored, _ = encrypt(DATA, both, [gpg_keys.fingerprint])
    assert gpg_keys.can_decrypt(armored)
    assert not following.can_decrypt(armored)


def test_an_expired_key_is_skipped_while_another_is_valid(
        gpg_keys, more_keys, tmp_path, caplog):
    _, expired = more_keys
    both = keyring(tmp_path, gpg_keys, expired)
    armored, recipients = encrypt(DATA, both, [expired.fingerprint,
                                               gpg_keys.fingerprint])
    assert recipients == (gpg_keys.fingerprint,)
    assert gpg_keys.decrypt(armored) == DATA
    assert not expired.can_decrypt(armored)
    warned = [r.getMessage() for r in caplog.records
              if r.name.startswith("pyweb_popcon")]
    assert len(warned) == 1
    assert re.fullmatch(f"the server key {expired.fingerprint} expired on "
                        f"2020-..-..: skipped, the report is encrypted to "
                        f"{gpg_keys.fingerprint}", warned[0])


def test_private_home_removed_and_no_agent_left(gpg_keys, tmp_path,
                                                monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    encrypt(DATA, gpg_keys.public, [gpg_keys.fingerprint])
    assert os.listdir(tmp_path) == []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                assert str(tmp_path).encode() not in f.read()
        except FileNotFoundError:
            pass


def test_never_the_callers_keyring(gpg_keys, tmp_path, monkeypatch):
    monkeypatch.setenv("GNUPGHOME", gpg_keys.home)     # holds the key
    with pytest.raises(KeyProblem, match="cannot read KEYRING"):
        encrypt(DATA, str(tmp_path / "missing.asc"), [gpg_keys.fingerprint])


def test_key_problems(gpg_keys, more_keys, tmp_path):
    following, expired = more_keys
    with pytest.raises(KeyProblem, match="KEY_FINGERPRINTS is empty"):
        encrypt(DATA, gpg_keys.public, ())
    with pytest.raises(KeyProblem, match=f"{following.fingerprint}, which "
                       "is not a key in KEYRING"):
        encrypt(DATA, gpg_keys.public, [gpg_keys.fingerprint,
                                        following.fingerprint])
    with pytest.raises(KeyProblem, match=f"key {expired.fingerprint} "
                       "expired on 2020-"):
        encrypt(DATA, expired.public, [expired.fingerprint])
    garbage = tmp_path / "garbage.asc"
    garbage.write_text("not a key\n")
    with pytest.raises(KeyProblem, match="which is not a key in KEYRING"):
        encrypt(DATA, str(garbage), [gpg_keys.fingerprint])
    garbage.chmod(0)
    if os.geteuid() != 0:
        with pytest.raises(KeyProblem, match="Permission denied"):
            encrypt(DATA, str(garbage), [gpg_keys.fingerprint])
