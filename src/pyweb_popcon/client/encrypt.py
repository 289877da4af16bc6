"""Encrypt a message to the server's pinned keys, and to nothing else.

GnuPG runs in a home directory made for this one call and removed after
it, so root's keyring, trust database and gpg.conf play no part and no
agent outlives the run.  The keys are imported from the KEYRING file; only
the fingerprints in KEY_FINGERPRINTS are used, all of them (a server
rotating its key publishes the old and the new one for a while).
"""

import contextlib
import datetime
import shutil
import subprocess
import tempfile

import gnupg


class KeyProblem(Exception):
    """The server keys cannot be used; the message says what to fix."""


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


def _check(key, fingerprint, keyring):
    """KeyProblem unless `key` (a gpg listing) can be encrypted to now."""
    if key is None:
        raise KeyProblem(f"KEY_FINGERPRINTS names {fingerprint}, which is not "
                         f"a key in KEYRING {keyring}: the two settings must "
                         "name the same server keys")
    if key["trust"] == "r":
        raise KeyProblem(f"the server key {fingerprint} is revoked: install "
                         "the server's current keys and fingerprints")
    if key["trust"] == "e":
        ended = datetime.datetime.fromtimestamp(
            int(key["expires"]), datetime.timezone.utc)
        raise KeyProblem(f"the server key {fingerprint} expired on "
                         f"{ended:%Y-%m-%d}: install the server's current "
                         "keys and fingerprints")
    # An upper-case E is gpg saying the key as a whole can encrypt now.
    if "E" not in key["cap"]:
        raise KeyProblem(f"the server key {fingerprint} has no valid "
                         "encryption subkey: install the server's current "
                         "keys and fingerprints")


def seal(root, config, data):
    """`data` encrypted to the configured server keys, or KeyProblem."""
    return encrypt(data, root.path(config["KEYRING"]),
                   config["KEY_FINGERPRINTS"])


def encrypt(data, keyring, fingerprints):
    """ASCII-armored OpenPGP ciphertext of `data` for `fingerprints`.

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
        for fingerprint in fingerprints:
            _check(listed.get(fingerprint), fingerprint, keyring)
        # "always" trust: the fingerprints are pinned by the configuration,
        # there is no web of trust to consult and no trust database.
        result = gpg.encrypt(data, list(fingerprints), armor=True,
                             always_trust=True)
    if not result.ok:
        raise KeyProblem(f"gpg could not encrypt to {' '.join(fingerprints)} "
                         f"from KEYRING {keyring}: {result.status}")
    return result.data
