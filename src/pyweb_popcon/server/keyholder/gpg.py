"""Everything GnuPG on the server: the key pair, and decrypting the spool.

The key: ed25519 to certify, cv25519 to decrypt reports, in STATE_DIR/gnupg,
owned by the ingest user.  A rotation adds a new key and gives the old one
an expiry date (the switch); expire retires it EXPIRE_DAYS after that.

Decrypting: starting gpg costs more than decrypting one small report, so a
batch of files goes through a single `gpg --decrypt-files`.  Its status lines (FILE_START ... FILE_DONE) say what
happened to each file.  The plaintexts go to a private temporary directory
that is removed when the batch is done.  The gpg command line is used
directly: python-gnupg runs one process per message.

Every gpg process runs under a time limit: one that hangs is killed with
all it started, and a batch it did not finish is not judged at all.
"""

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from typing import NamedTuple

from pyweb_popcon import report
from pyweb_popcon.server import ServerError
from pyweb_popcon.openpgp import is_encrypted_message
from pyweb_popcon.server.settings import INGEST_USER

USER_ID = "pyweb-popcon server"
# Listing, making or exporting the key, or stopping the agent, takes well
# under a second.
KEY_TIMEOUT = 120
# The key ID of a hidden recipient (gpg --hidden-recipient).
_HIDDEN = "0000000000000000"
# Status keywords a signature brings (gpg --sign, --clearsign).
_SIGNATURE = {"NEWSIG", "GOODSIG", "BADSIG", "ERRSIG", "EXPSIG", "EXPKEYSIG",
              "REVKEYSIG", "VALIDSIG"}


class GPGError(ServerError):
    """gpg could not make or export the key, or did not finish its work
    (then no file may be judged by its silence)."""


def _run(argv, timeout):
    """(exit status, stdout, stderr) of `argv`; the status is None when it
    ran past `timeout` seconds and was killed, with everything it started
    (its own session)."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException as e:      # the time limit, or ^C: nothing stays
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        if not isinstance(e, subprocess.TimeoutExpired):
            raise
        return None, e.stdout or b"", e.stderr or b""
    return proc.returncode, out, err


class Outcome:
    """What decrypting one file gave: `plaintext`, or `reason` and `detail`."""

    __slots__ = ("plaintext", "reason", "detail")

    def __init__(self, plaintext=None, reason=None, detail=""):
        self.plaintext, self.reason, self.detail = plaintext, reason, detail


def _statuses(output):
    """({input path: [status words]} of the files gpg finished, the path
    it started but did not finish or None), from --status-fd."""
    files, current, name = {}, None, None
    for line in output.decode("utf-8", "replace").splitlines():
        if not line.startswith("[GNUPG:] "):
            continue
        words = line[len("[GNUPG:] "):].split()
        if not words:
            continue
        if words[0] == "FILE_START":
            name, current = " ".join(words[2:]), []
        elif words[0] == "FILE_DONE":
            if current is not None:
                files[name] = current
            current = None
        elif current is not None:
            current.append(words)
    return files, (name if current is not None else None)


def _judge(status, plain_path):
    """The Outcome of a file gpg finished with `status`, its plaintext (if
    any) in `plain_path`."""
    keywords = {w[0] for w in status}
    if "DECRYPTION_OKAY" in keywords:
        return _plaintext(plain_path)
    if "NEED_PASSPHRASE_SYM" in keywords:
        # Decrypting needs a passphrase, never given: no key is tried.
        return Outcome(reason="symmetric",
                       detail="encrypted with a passphrase, not to this "
                              "server's key")
    if "ENC_TO" in keywords:
        keys = {w[1] for w in status if w[0] == "ENC_TO"}
        if keys == {_HIDDEN}:
            # gpg tries its own key on a hidden recipient: had it been
            # this server's, the message would have decrypted.
            return Outcome(reason="wrong-key",
                           detail="encrypted to a hidden recipient, not to "
                                  "this server's key")
        # gpg considers a key of its own only for a session key addressed
        # to it.
        if "KEY_CONSIDERED" not in keywords:
            return Outcome(reason="wrong-key",
                           detail=f"encrypted to {' '.join(sorted(keys))}, "
                                  "not to this server's key")
        return Outcome(reason="undecryptable",
                       detail="encrypted to this server's key, but gpg "
                              "could not decrypt it (damaged or cut short)")
    if keywords & _SIGNATURE:
        return Outcome(reason="signed",
                       detail="signed but not encrypted")
    if "PLAINTEXT" in keywords:
        return Outcome(reason="not-encrypted",
                       detail="OpenPGP data that is not encrypted")
    if keywords <= {"NODATA"}:
        if not os.access(plain_path + ".asc", os.R_OK):
            return Outcome(reason="undecryptable",
                           detail="ingest may not read it")
        return Outcome(reason="not-openpgp",
                       detail="no OpenPGP data in it")
    return Outcome(reason="undecryptable",
                   detail=f"gpg could not decrypt it ("
                          f"{' '.join(sorted(keywords))})")


_TOO_LARGE = Outcome(reason="too-large",
                     detail=f"decrypts to more than {report.MAX_BYTES} bytes")


def _plaintext(path):
    try:
        with open(path, "rb") as f:
            # Written under a file-size limit of MAX_BYTES + 1: reading
            # that much shows whether there was more.
            plaintext = f.read(report.MAX_BYTES + 1)
    except FileNotFoundError:
        return Outcome(reason="undecryptable", detail="gpg wrote nothing")
    if len(plaintext) > report.MAX_BYTES:
        return _TOO_LARGE
    if is_encrypted_message(plaintext):
        return Outcome(reason="nested",
                       detail="decrypts to another encrypted message")
    return Outcome(plaintext=plaintext)


def in_memory():
    """A tmpfs directory for the plaintexts: the unit's RuntimeDirectory=
    (under /run), else /dev/shm, else the usual temporary directory."""
    for candidate in (os.environ.get("RUNTIME_DIRECTORY"), "/dev/shm"):
        if candidate and os.access(candidate, os.W_OK | os.X_OK):
            return candidate
    return None


def decrypt_batch(gnupg_home, paths, timeout):
    """[Outcome] for each of `paths`, in order.  One gpg process does them
    all, unless a file makes it give up: that file is undecryptable and a
    new process takes the rest.  Each may run `timeout` seconds; GPGError
    when one is killed, or ends without saying what it did."""
    work = tempfile.mkdtemp(prefix="pyweb-popcon-ingest-", dir=in_memory())
    try:
        inputs = []
        for i, path in enumerate(paths):
            # gpg names each output after its input without ".asc", and
            # sees only these names, never one a client could choose.
            link = os.path.join(work, f"{i}.asc")
            os.symlink(os.path.abspath(path), link)
            inputs.append(link)
        outcomes, pending = {}, inputs
        while pending:
            done, gave_up = _decrypt_files(gnupg_home, pending, timeout)
            for link, status in done.items():
                outcomes[link] = _judge(status, link[:-len(".asc")])
            if gave_up:
                link, outcome = gave_up
                outcomes[link] = outcome
            pending = [link for link in pending if link not in outcomes]
        return [outcomes[link] for link in inputs]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _decrypt_files(gnupg_home, inputs, timeout):
    """({input: status words} of the files finished, None or (the input
    gpg gave up on, its Outcome)) from one `gpg --decrypt-files`."""
    # The file-size limit stops a compressed bomb: gpg is killed by SIGXFSZ
    # on writing one byte more than a report may have, instead of spending
    # minutes decompressing what it can no longer write.  gpg takes the
    # empty passphrase for none: a message encrypted with a passphrase
    # fails at once, without deriving a key (with no passphrase at all gpg
    # would end at the first such message).
    status, out, err = _run(
        ["prlimit", f"--fsize={report.MAX_BYTES + 1}", "--",
         "gpg", "--homedir", gnupg_home, "--batch", "--yes", "--no-tty",
         "--quiet", "--status-fd", "1", "--pinentry-mode", "loopback",
         "--passphrase", "", "--decrypt-files", *inputs], timeout)
    done, started = _statuses(out)
    if len(done) == len(inputs):
        return done, None
    last = (err.decode("utf-8", "replace").strip().splitlines() or
            [f"exit status {status}"])[-1]
    if status == -signal.SIGXFSZ and started:
        return done, (started, _TOO_LARGE)
    if status is not None and status >= 0 and started:
        return done, (started, Outcome(
            reason="undecryptable", detail=f"gpg gave up on it ({last})"))
    # Killed, hung, not installed, a broken home: judging the files it did
    # not finish would quarantine good reports.
    if status is None:
        how = f"did not finish in {timeout} s and was killed"
    elif status < 0:
        how = f"was killed by {signal.Signals(-status).name}"
    else:
        how = f"exited with status {status} ({last})"
    if started:
        how += f" while on {os.path.basename(os.readlink(started))!r}"
    raise GPGError(f"gpg --decrypt-files {how}, after finishing {len(done)} "
                   f"of {len(inputs)} files")


def stop_agent(gnupg_home):
    """End the gpg-agent the batches started: no daemon outlives a run."""
    _run(["gpgconf", "--homedir", gnupg_home, "--kill", "gpg-agent"],
         KEY_TIMEOUT)


# -- the key pair ------------------------------------------------------------

def _gpg(home, *args, check=True):
    argv = ["gpg", "--homedir", home, "--batch", "--no-tty",
            "--pinentry-mode", "loopback", "--passphrase", "", *args]
    status, out, err = _run(argv, KEY_TIMEOUT)
    if status is None:
        raise GPGError(f"gpg {args[0]} did not finish in {KEY_TIMEOUT} s "
                       "and was killed")
    if status and check:
        raise GPGError(f"gpg {args[0]} failed: "
                       f"{err.decode(errors='replace').strip()}")
    return out


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
    listing = _gpg(home, "--list-secret-keys" if secret else "--list-keys",
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
