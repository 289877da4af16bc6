"""The server's key pair: ed25519 to certify, cv25519 to decrypt reports."""

import os
import pwd
import subprocess

from pyweb_popcon.server import config
from pyweb_popcon.server.decrypt import stop_agent

USER_ID = "pyweb-popcon server"


class KeygenError(Exception):
    """gpg could not make or export the key."""


def _gpg(home, *args, stdout=subprocess.PIPE):
    proc = subprocess.run(
        ["gpg", "--homedir", home, "--batch", "--no-tty", "--pinentry-mode",
         "loopback", "--passphrase", "", *args],
        stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE,
        check=False)
    if proc.returncode:
        raise KeygenError(f"gpg {args[0]} failed: "
                        f"{proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def fingerprint(home):
    """The fingerprint of the secret key in `home`, or None."""
    if not os.path.isdir(home):
        return None
    try:
        listing = _gpg(home, "--with-colons", "--list-secret-keys")
    except KeygenError:
        return None
    for line in listing.decode().splitlines():
        if line.startswith("fpr:"):
            return line.split(":")[9]
    return None


def ensure_key(home):
    """(fingerprint, made): the key in `home`, made now if there is none."""
    os.makedirs(home, mode=0o700, exist_ok=True)
    os.chmod(home, 0o700)
    fpr = fingerprint(home)
    made = fpr is None
    try:
        if made:
            _gpg(home, "--quick-gen-key", USER_ID, "ed25519", "cert", "never")
            fpr = fingerprint(home)
            _gpg(home, "--quick-add-key", fpr, "cv25519", "encr", "never")
    finally:
        stop_agent(home)
    if os.geteuid() == 0:
        _give_to_ingest(home)
    return fpr, made


def _give_to_ingest(home):
    """Run as root at installation: the key belongs to the ingest user."""
    try:
        user = pwd.getpwnam(config.INGEST_USER)
    except KeyError:
        return
    os.lchown(home, user.pw_uid, user.pw_gid)
    for top, dirs, names in os.walk(home):
        for name in dirs + names:
            os.lchown(os.path.join(top, name), user.pw_uid, user.pw_gid)


def export(home, fpr):
    """The armored public key."""
    return _gpg(home, "--armor", "--export", fpr)
