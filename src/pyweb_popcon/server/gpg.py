"""Everything GnuPG on the server: the key pair, and decrypting the spool.

The key: ed25519 to certify, cv25519 to decrypt reports, in STATE_DIR/gnupg,
owned by the ingest user.  A rotation adds a new key and gives the old one
an expiry date (the switch); expire retires it EXPIRE_DAYS after that.  Decrypting: starting gpg costs more than
decrypting one small report, so a batch of files goes through a single
`gpg --decrypt-files`.  Its status lines (FILE_START ... FILE_DONE) say what
happened to each file.  The plaintexts go to a private temporary directory
that is removed when the batch is done.  The gpg command line is used
directly: python-gnupg runs one process per message.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from typing import NamedTuple

from pyweb_popcon import report
from pyweb_popcon.server import ServerError
from pyweb_popcon.server.settings import INGEST_USER

USER_ID = "pyweb-popcon server"


class GPGError(ServerError):
    """gpg could not make or export the key, or did not work at all (then
    no file may be judged by its silence)."""


class Outcome:
    """What decrypting one file gave: `plaintext`, or `reason` and `detail`."""

    __slots__ = ("plaintext", "reason", "detail")

    def __init__(self, plaintext=None, reason=None, detail=""):
        self.plaintext, self.reason, self.detail = plaintext, reason, detail


def _statuses(output):
    """{input path: [status keywords and arguments]} from --status-fd."""
    files, current = {}, None
    for line in output.decode("utf-8", "replace").splitlines():
        if not line.startswith("[GNUPG:] "):
            continue
        words = line[len("[GNUPG:] "):].split()
        if words[0] == "FILE_START":
            current = files.setdefault(" ".join(words[2:]), [])
        elif words[0] == "FILE_DONE":
            current = None
        elif current is not None:
            current.append(words)
    return files


def _judge(status, plain_path):
    keywords = {w[0] for w in status}
    if "DECRYPTION_OKAY" not in keywords:
        # Addressed to keys, none of which is ours.
        if "ENC_TO" in keywords and "DECRYPTION_KEY" not in keywords:
            keys = " ".join(w[1] for w in status if w[0] == "ENC_TO")
            return Outcome(reason="wrong-key",
                           detail=f"encrypted to {keys}, not to this "
                                  "server's key")
        what = " ".join(sorted(keywords)) or "no OpenPGP data"
        return Outcome(reason="undecryptable",
                       detail=f"gpg could not decrypt it ({what})")
    try:
        with open(plain_path, "rb") as f:
            # Written under a file-size limit of MAX_BYTES + 1: reading
            # that much shows whether there was more.
            plaintext = f.read(report.MAX_BYTES + 1)
    except FileNotFoundError:
        return Outcome(reason="undecryptable", detail="gpg wrote nothing")
    if len(plaintext) > report.MAX_BYTES:
        return Outcome(reason="invalid-report",
                       detail=f"plaintext over {report.MAX_BYTES} bytes")
    return Outcome(plaintext=plaintext)


def in_memory():
    """A tmpfs directory for the plaintexts: the unit's RuntimeDirectory=
    (under /run), else /dev/shm, else the usual temporary directory."""
    for candidate in (os.environ.get("RUNTIME_DIRECTORY"), "/dev/shm"):
        if candidate and os.access(candidate, os.W_OK | os.X_OK):
            return candidate
    return None


def decrypt_batch(gnupg_home, paths):
    """[Outcome] for each of `paths`, in order, from one gpg process."""
    work = tempfile.mkdtemp(prefix="pyweb-popcon-ingest-", dir=in_memory())
    try:
        inputs = []
        for i, path in enumerate(paths):
            # gpg names each output after its input without ".asc".
            link = os.path.join(work, f"{i}.asc")
            os.symlink(os.path.abspath(path), link)
            inputs.append(link)
        # The file-size limit stops a compressed bomb from filling the disk;
        # Python ignores SIGXFSZ, and gpg keeps that (restore_signals=False),
        # so an oversized plaintext is a write error for that file alone.
        proc = subprocess.run(
            ["prlimit", f"--fsize={report.MAX_BYTES + 1}", "--",
             "gpg", "--homedir", gnupg_home, "--batch", "--yes", "--no-tty",
             "--quiet", "--status-fd", "1", "--pinentry-mode", "loopback",
             "--passphrase", "", "--decrypt-files", *inputs],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, restore_signals=False, check=False)
        statuses = _statuses(proc.stdout)
        if inputs and not statuses:
            # gpg did not even start on the files (not installed, killed,
            # a broken home): judging them would quarantine good reports.
            raise GPGError(f"gpg --decrypt-files processed none of "
                           f"{len(inputs)} files (exit status "
                           f"{proc.returncode})")
        return [_judge(statuses.get(link, []), link[:-len(".asc")])
                for link in inputs]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def stop_agent(gnupg_home):
    """End the gpg-agent the batches started: no daemon outlives a run."""
    subprocess.run(["gpgconf", "--homedir", gnupg_home, "--kill",
                    "gpg-agent"], stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False)


# -- the key pair ------------------------------------------------------------

def _gpg(home, *args, stdout=subprocess.PIPE):
    proc = subprocess.run(
        ["gpg", "--homedir", home, "--batch", "--no-tty", "--pinentry-mode",
         "loopback", "--passphrase", "", *args],
        stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE,
        check=False)
    if proc.returncode:
        raise GPGError(f"gpg {args[0]} failed: "
                       f"{proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


class Key(NamedTuple):
    """A key in the server's home, as gpg lists it."""
    fingerprint: str
    created: int               # seconds since the epoch
    expires: int | None        # the primary key's expiry, None for never
    encrypts: bool             # has an encryption subkey valid now


def keys(home, secret=False):
    """[Key] of every key in `home` (every secret key, when `secret`),
    oldest first; [] if none.

    Only listing secret keys starts gpg-agent; stopping it would break a
    run that uses it at the same time, so `status` and `keygen` list the
    public keys (the home holds no others).
    """
    if not os.path.isdir(home):
        return []
    try:
        listing = _gpg(home, "--with-colons", "--fixed-list-mode",
                       "--list-secret-keys" if secret else "--list-keys")
    except GPGError:
        return []
    found, current, subkeys = [], None, []
    for line in listing.decode().splitlines() + ["pub:"]:
        fields = line.split(":")
        if fields[0] in ("pub", "sec"):
            if current:
                found.append(current._replace(encrypts=any(subkeys)))
            current, subkeys = None, []
            if len(fields) > 6:
                current = Key("", int(fields[5]),
                              int(fields[6]) if fields[6] else None, False)
        elif fields[0] == "fpr" and current and not current.fingerprint:
            current = current._replace(fingerprint=fields[9])
        elif fields[0] in ("sub", "ssb"):
            subkeys.append("e" in fields[11] and fields[1] not in "erd"
                           and current is not None)
    return sorted(found, key=lambda k: k.created)


def fingerprint(home):
    """The fingerprint of the newest secret key in `home`, or None."""
    found = keys(home, secret=True)
    return found[-1].fingerprint if found else None


def _make_key(home):
    # --yes: a rotation makes a second key with the same user ID.
    _gpg(home, "--yes", "--quick-gen-key", USER_ID, "ed25519", "cert",
         "never")
    fpr = fingerprint(home)
    _gpg(home, "--quick-add-key", fpr, "cv25519", "encr", "never")
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
    if os.geteuid() == 0:
        _give_to_ingest(home)
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
                _gpg(home, "--quick-set-expire", key.fingerprint, expire)
                _gpg(home, "--quick-set-expire", key.fingerprint, expire, "*")
    finally:
        stop_agent(home)
    if os.geteuid() == 0:
        _give_to_ingest(home)
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
            _gpg(home, "--yes", "--delete-secret-and-public-key", fpr)
    finally:
        stop_agent(home)


def _give_to_ingest(home):
    """Run as root at installation: the key belongs to the ingest user."""
    try:
        user = pwd.getpwnam(INGEST_USER)
    except KeyError:
        return
    os.lchown(home, user.pw_uid, user.pw_gid)
    for top, dirs, names in os.walk(home):
        for name in dirs + names:
            os.lchown(os.path.join(top, name), user.pw_uid, user.pw_gid)


def current(home, now=None):
    """The keys clients should encrypt to: those not expired, oldest
    first."""
    now = time.time() if now is None else now
    return [k for k in keys(home) if k.expires is None or k.expires > now]


def export(home, fingerprints):
    """The armored public keys."""
    return _gpg(home, "--armor", "--export", *fingerprints)
