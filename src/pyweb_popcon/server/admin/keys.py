"""The server's key pair: made, listed, rotated, retired, exported.

The key: ed25519 to certify, cv25519 to decrypt reports, in STATE_DIR/gnupg,
owned by the ingest user, who alone works on it (gpg as root would follow
the links that user can put there).  A rotation adds a new key and gives
the old one an expiry date (the switch); expire retires it EXPIRE_DAYS
after that.
"""

import os
import time
from typing import NamedTuple

from pyweb_popcon.server.keyholder.gpg import command, stop_agent

USER_ID = "pyweb-popcon server"


class Key(NamedTuple):
    """A key in the server's home, as gpg lists it."""
    fingerprint: str
    created: int               # seconds since the epoch
    expires: int | None        # the primary key's expiry, None for never


def keys(home, secret=False):
    """[Key] of every key in `home` (every secret key, when `secret`),
    oldest first; [] if none; GPGError if gpg did not answer in time.

    Only listing secret keys starts gpg-agent; stopping it would break a
    run that uses it at the same time, so `status` and `keygen` list the
    public keys (the home holds no others).
    """
    if not os.path.isdir(home):
        return []
    # The command first: a timeout's message names it.
    listing = command(home, "--list-secret-keys" if secret else "--list-keys",
                      "--with-colons", "--fixed-list-mode", check=False)
    found, current = [], None
    for line in listing.decode(errors="replace").splitlines() + ["pub:"]:
        fields = line.split(":")
        if fields[0] in ("pub", "sec"):
            if current:
                found.append(current)
            current = None
            if len(fields) > 6:
                current = Key("", int(fields[5]),
                              int(fields[6]) if fields[6] else None)
        elif fields[0] == "fpr" and current and not current.fingerprint:
            current = current._replace(fingerprint=fields[9])
    return sorted(found, key=lambda k: k.created)


def fingerprint(home):
    """The fingerprint of the newest secret key in `home`, or None."""
    found = keys(home, secret=True)
    return found[-1].fingerprint if found else None


def _make_key(home):
    # --yes: a rotation makes a second key with the same user ID.
    command(home, "--yes", "--quick-gen-key", USER_ID, "ed25519", "cert",
            "never")
    fpr = fingerprint(home)
    command(home, "--quick-add-key", fpr, "cv25519", "encr", "never")
    return fpr


def _home(home):
    os.makedirs(home, mode=0o700, exist_ok=True)
    os.chmod(home, 0o700)


def ensure_key(home):
    """(fingerprint, made): the key in `home`, made now if there is none."""
    _home(home)
    fpr = fingerprint(home)
    made = fpr is None
    try:
        if made:
            fpr = _make_key(home)
    finally:
        stop_agent(home)
    return fpr, made


def rotate(home, switch_in):
    """Make a new key; every older one expires `switch_in` seconds from
    now (unless it expires sooner).  The new key's fingerprint.  It stops
    the agent: no ingest may run meanwhile (the caller holds its lock).

    Until the switch clients encrypt to the old key and the new one; after
    it, to the new one only (an expired key is skipped).  The old secret
    key stays for what is still on its way, until retire() removes it.
    """
    _home(home)
    try:
        older = keys(home)
        fpr = _make_key(home)
        switch = time.time() + switch_in
        # gpg counts relative expiry from now; at least a second ahead.
        expire = f"seconds={max(1, switch_in)}"
        for key in older:
            if key.expires is None or key.expires > switch:
                command(home, "--quick-set-expire", key.fingerprint, expire)
                command(home, "--quick-set-expire", key.fingerprint, expire,
                        "*")
    finally:
        stop_agent(home)
    return fpr


def retired(home, before):
    """The keys that expired before `before` (seconds since the epoch),
    the newest key aside, which retire() is to delete.

    A key that expired EXPIRE_DAYS ago can only decrypt reports of hosts
    that expire would delete anyway: keeping it would only let a thief of
    the server read old reports caught in transit.
    """
    return [key.fingerprint for key in keys(home)[:-1]
            if key.expires is not None and key.expires < before]


def retire(home, fingerprints):
    """Delete these keys, secret and public.  It stops the agent: no
    ingest may run meanwhile (the caller holds its lock)."""
    try:
        for fpr in fingerprints:
            command(home, "--yes", "--delete-secret-and-public-key", fpr)
    finally:
        stop_agent(home)


def current(home, now=None):
    """The keys clients should encrypt to: those not expired, oldest
    first."""
    now = time.time() if now is None else now
    return [k for k in keys(home) if k.expires is None or k.expires > now]


def export(home, fingerprints):
    """The armored public keys."""
    return command(home, "--armor", "--export", *fingerprints)
