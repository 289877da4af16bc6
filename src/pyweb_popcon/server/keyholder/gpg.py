"""Running GnuPG on the server, and decrypting the spool with it.

Decrypting: starting gpg costs more than decrypting one small report, so
a batch of files goes through a single `gpg --decrypt-files`.  Its status
lines (FILE_START ... FILE_DONE) say what happened to each file (judged
in judge.py).  The plaintexts go to a private temporary directory that
is removed when the batch is done.  The gpg command line is used
directly: python-gnupg runs one process per message.

Every gpg process runs under a time limit: one that hangs is killed with
all it started, and a batch it did not finish is not judged at all.
"""

import os
import shutil
import signal
import subprocess
import tempfile

from pyweb_popcon import report
from pyweb_popcon.server import ServerError
from pyweb_popcon.server.keyholder.judge import TOO_LARGE, Outcome, judge

# Listing, making or exporting the key, or stopping the agent, takes well
# under a second.
KEY_TIMEOUT = 120


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
    when one is killed, or ends without saying what it did.  The server's
    key IDs are listed first, for the judging."""
    own = own_key_ids(gnupg_home)
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
                outcomes[link] = judge(status, link[:-len(".asc")], own)
            if gave_up:
                link, outcome = gave_up
                outcomes[link] = outcome
            pending = [link for link in pending if link not in outcomes]
        return [outcomes[link] for link in inputs]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def own_key_ids(gnupg_home):
    """The key IDs of the secret keys and subkeys in `gnupg_home`, as
    gpg's ENC_TO names them; GPGError when gpg fails or is killed."""
    listing = command(gnupg_home, "--list-secret-keys", "--with-colons")
    rows = (line.split(":") for line in
            listing.decode(errors="replace").splitlines())
    return {row[4] for row in rows if row[0] in ("sec", "ssb")}


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
        return done, (started, TOO_LARGE)
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


def command(home, *args, check=True):
    """The output of gpg `args` on the key pair in `home`, in KEY_TIMEOUT
    s; GPGError when it fails (with `check`) or is killed."""
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
