"""Encrypt a message to the server's pinned keys, and to nothing else.

GnuPG runs in a home directory made for this one call and removed after
it, so root's keyring, trust database and gpg.conf play no part and no
agent outlives the run.  The keys are imported from the KEYRING file; only
the fingerprints in KEY_FINGERPRINTS are used, every one of them that is
valid now (a server rotating its key publishes the old and the new one
for a while, and lets the old one expire).
"""

import contextlib
import datetime
import logging
import shutil
import subprocess
import tempfile
from typing import NamedTuple

import gnupg

logger = logging.getLogger(__name__)


class KeyProblem(Exception):
    """The server keys cannot be used; the message says what to fix."""


class Sealed(NamedTuple):
    ciphertext: bytes
    recipients: tuple       # the fingerprints it is encrypted to


@contextlib.contextmanager
def _private_home():
    home = tempfile.mkdtemp(prefix="pyweb-popcon-gnupg-")     # mode 0700
    try:
        yield home
    finally:
        # gpg starts gpg-agent (and maybe dirmngr) on its own when it
        # wants them; they would keep running in a directory that is gone.
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=30, check=False)
        shutil.rmtree(home, ignore_errors=True)


def _unusable(key):
    """Why `key` (a gpg listing) cannot be encrypted to now, or None."""
    if key["trust"] == "r":
        return "is revoked"
    if key["trust"] == "e":
        ended = datetime.datetime.fromtimestamp(
            int(key["expires"]), datetime.timezone.utc)
        return f"expired on {ended:%Y-%m-%d}"
    # An upper-case E is gpg saying the key as a whole can encrypt now.
    if "E" not in key["cap"]:
        return "has no valid encryption subkey"
    return None


def _recipients(listed, fingerprints, keyring):
    """The pinned fingerprints that can be encrypted to now.

    One that is expired or revoked is skipped with a warning: a server
    rotating its key lets the old one expire while clients still pin it.
    Only when none is left is that a KeyProblem.  A fingerprint that is
    not in KEYRING at all is always one: the two settings disagree.
    """
    usable, skipped = [], []
    for fingerprint in fingerprints:
        key = listed.get(fingerprint)
        if key is None:
            raise KeyProblem(f"KEY_FINGERPRINTS names {fingerprint}, which is "
                             f"not a key in KEYRING {keyring}: the two "
                             "settings must name the same server keys")
        why = _unusable(key)
        if why:
            skipped.append(f"the server key {fingerprint} {why}")
        else:
            usable.append(fingerprint)
    if not usable:
        raise KeyProblem("; ".join(skipped) + ": install the server's "
                         "current keys and fingerprints")
    for problem in skipped:
        logger.warning("%s: skipped, the report is encrypted to %s", problem,
                       " ".join(usable))
    return usable


def seal(root, config, data):
    """`data` encrypted to the configured server keys, or KeyProblem."""
    return encrypt(data, root.path(config["KEYRING"]),
                   config["KEY_FINGERPRINTS"])


def encrypt(data, keyring, fingerprints):
    """Sealed: ASCII-armored OpenPGP ciphertext of `data` for every one of
    `fingerprints` that is valid now, and which those were.

    `keyring` is the file of armored public keys; KeyProblem says what is
    wrong with it or with the fingerprints.  There is no other outcome: a
    caller never gets the plain text back to send instead.
    """
    if not fingerprints:
        raise KeyProblem("KEY_FINGERPRINTS is empty: set it to the "
                         "fingerprint(s) of the server's key(s)")
    try:
        with open(keyring, "rb") as f:
            keys = f.read()
    except OSError as e:
        raise KeyProblem(f"cannot read KEYRING {keyring}: {e.strerror}; "
                         "install the server's public keys there or point "
                         "KEYRING at them") from None
    with _private_home() as home:
        gpg = gnupg.GPG(gnupghome=home)
        gpg.import_keys(keys)
        listed = {k["fingerprint"]: k for k in gpg.list_keys()}
        recipients = _recipients(listed, fingerprints, keyring)
        # "always" trust: the fingerprints are pinned by the configuration,
        # there is no web of trust to consult and no trust database.
        result = gpg.encrypt(data, recipients, armor=True, always_trust=True)
    if not result.ok:
        raise KeyProblem(f"gpg could not encrypt to {' '.join(recipients)} "
                         f"from KEYRING {keyring}: {result.status}")
    return Sealed(result.data, tuple(recipients))
