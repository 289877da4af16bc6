"""Ingest: spool -> database, in parallel batches, safe to kill at any point.

Each batch is decrypted by one gpg process, as many at a time as there are
cores, while this thread validates finished batches with the shared report
module and stores them.  A spool file is deleted only after the transaction
holding its message has committed; since a message replaces a row only when
it was received later (or, at the same time, has a later spool name),
storing it twice changes nothing, so a rerun after a crash ends where one
clean run would.

One submission, one fate: every entry of incoming/ but the receiver's
files being written (dot-prefixed regular files) is stored, dropped as
outdated, or moved to quarantine/ next to a .reason file, which is written
first so a quarantined entry always has one.  Only a gpg that hangs or is
killed leaves its batch where it is, for the next run.
"""

import collections
import concurrent.futures
import fcntl
import hashlib
import itertools
import logging
import os
import stat

from pyweb_popcon import report
from pyweb_popcon.common import files
from pyweb_popcon.server.keyholder.gpg import (GPGError, decrypt_batch,
                                              stop_agent)
from pyweb_popcon.common.progress import bar

logger = logging.getLogger(__name__)

BATCH = 500          # files per gpg process: amortises its start-up
# Why a submission is in quarantine, in the order a submission is looked
# at; pyweb-popcon-server(8) says what each means.
REASONS = ("not-a-file", "not-openpgp", "not-encrypted", "signed",
           "symmetric", "wrong-key", "undecryptable", "too-large", "nested",
           "invalid-json", "invalid-report")
MAX_REASON = 500     # characters in a .reason line
NAME_MAX = 255       # bytes in a file name (Linux file systems)

_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFLNK: "a symbolic link",
          stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket",
          stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device"}


def spool_entries(incoming):
    """([(name, mtime_ns)] of the regular files, [(name, what it is)] of
    the other entries) in `incoming`, but for the receiver's dot-files."""
    found, others = [], []
    with os.scandir(incoming) as it:
        for entry in it:
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode):
                if not entry.name.startswith("."):
                    found.append((entry.name, st.st_mtime_ns))
            else:
                others.append((entry.name, _KINDS.get(
                    stat.S_IFMT(st.st_mode), "an entry of another kind")))
    return sorted(found), sorted(others)


def classify(outcome):
    """(message, None) or (None, (reason, detail)) for one decrypted file."""
    if outcome.reason:
        return None, (outcome.reason, outcome.detail)
    try:
        return report.parse(outcome.plaintext), None
    except report.NotJSON as e:
        return None, ("invalid-json", str(e))
    except report.ReportError as e:
        return None, ("invalid-report", str(e))
    except Exception as e:      # noqa: BLE001 -- a bug, but only this one's
        logger.error("checking a submission failed: %s", type(e).__name__,
                     exc_info=True)
        return None, ("invalid-report",
                      f"the checks failed on it ({type(e).__name__})")


def reason_line(reason, detail):
    """`reason: detail` as the one line of a .reason file: what is not
    printable escaped as repr escapes it, at most MAX_REASON characters."""
    pieces, length = [], 0
    for c in f"{reason}: {detail}":
        pieces.append(c if c.isprintable() else repr(c)[1:-1])
        length += len(pieces[-1])
        if length > MAX_REASON:
            # Cut where an escape ends, not inside one.
            while length > MAX_REASON - 3:
                length -= len(pieces.pop())
            return "".join(pieces) + "..."
    return "".join(pieces)


def quarantine(spool_dir, name, reason, detail, summary):
    """Move incoming/NAME to quarantine/ with its .reason, counted in
    `summary`; if it cannot be moved, it is left (and said so)."""
    directory = os.path.join(spool_dir, "quarantine")
    kept = _quarantine_name(directory, name)
    if kept != name:
        detail += f"; in incoming/ as {name!r}"
    reason_path = os.path.join(directory, kept + ".reason")
    files.write_atomic(reason_path,
                       (reason_line(reason, detail) + "\n").encode(),
                       mode=0o640)
    try:
        os.replace(os.path.join(spool_dir, "incoming", name),
                   os.path.join(directory, kept))
    except FileNotFoundError:       # taken away by hand meanwhile
        os.unlink(reason_path)
    except OSError as e:
        # A directory not ours to move, say: it stays, the rest goes on.
        os.unlink(reason_path)
        logger.error("ingest: cannot move %r to quarantine/ (%s): %s", name,
                     reason, e.strerror)
        summary["left"] += 1
    else:
        summary["quarantined " + reason] += 1


def _quarantine_name(directory, name):
    """NAME itself, unless NAME.reason would be too long for a file name,
    NAME looks like a .reason file, or quarantine/NAME exists: then a name
    made from NAME's hash."""
    raw = os.fsencode(name)
    if (len(raw) + len(".reason") <= NAME_MAX
            and not name.endswith(".reason")
            and not os.path.lexists(os.path.join(directory, name))):
        return name
    digest = hashlib.sha256(raw).hexdigest()[:32]
    for n in itertools.count():
        kept = f"renamed-{digest}-{n}"
        if not os.path.lexists(os.path.join(directory, kept)):
            return kept


def lock(spool_dir):
    """Hold the spool's ingest lock (until the process ends)."""
    fd = os.open(os.path.join(spool_dir, "ingest.lock"),
                 os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        logger.info("another ingest is running on %s; waiting", spool_dir)
        fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def run(store, spool_dir, gnupg_home, gpg_timeout, workers=None):
    """Ingest everything in SPOOL_DIR/incoming; a Counter of what happened
    ("left" counts files a failed gpg left for the next run)."""
    incoming = os.path.join(spool_dir, "incoming")
    os.makedirs(incoming, exist_ok=True)
    fd = lock(spool_dir)
    try:
        found, others = spool_entries(incoming)
        summary = collections.Counter()
        for name, what in others:
            quarantine(spool_dir, name, "not-a-file",
                       f"{what}, not a regular file; never followed", summary)
        workers = workers or len(os.sched_getaffinity(0))
        size = max(1, min(BATCH, -(-len(found) // workers)))
        batches = [found[i:i + size] for i in range(0, len(found), size)]
        with bar(len(found), "report", "ingest") as progress, \
                concurrent.futures.ThreadPoolExecutor(workers) as pool:
            decrypted = pool.map(
                lambda batch: _decrypt(gnupg_home, incoming, batch,
                                       gpg_timeout), batches)
            for batch, outcomes in zip(batches, decrypted):
                if outcomes is None:
                    summary["left"] += len(batch)
                else:
                    _store(store, spool_dir, batch, outcomes, summary)
                progress.update(len(batch))
    finally:
        stop_agent(gnupg_home)
        os.close(fd)
    logger.info("ingest: %s", describe(summary))
    return summary


def _decrypt(gnupg_home, incoming, batch, timeout):
    """The batch's outcomes, or None (and why, in the log) when gpg did
    not get through it: then its files stay for the next run."""
    try:
        return decrypt_batch(
            gnupg_home, [os.path.join(incoming, n) for n, _ in batch],
            timeout)
    except (GPGError, OSError) as e:
        logger.error("ingest: %s; its batch of %d files stays in incoming/ "
                     "for the next run", e, len(batch))
        return None


def _store(store, spool_dir, batch, outcomes, summary):
    good, names = [], []
    for (name, received), outcome in zip(batch, outcomes):
        message, bad = classify(outcome)
        if bad:
            quarantine(spool_dir, name, *bad, summary)
        else:
            # The database holds text: a name's undecodable bytes as \xNN.
            receipt = os.fsencode(name).decode("utf-8", "backslashreplace")
            good.append((received, receipt, message))
            names.append(name)
    for outcome in store.put(good):
        summary[outcome] += 1
    # Only now, with the transaction committed, may the files go.
    for name in names:
        try:
            os.unlink(os.path.join(spool_dir, "incoming", name))
        except FileNotFoundError:
            pass


def describe(summary):
    """One line: ingested, replaced, forgotten, outdated, quarantined, and
    what a failed gpg left."""
    parts = [f"{summary['new'] + summary['replaced']} ingested",
             f"{summary['replaced']} replaced",
             f"{summary['forgotten']} forgotten",
             f"{summary['outdated']} outdated"]
    quarantined = sum(summary["quarantined " + r] for r in REASONS)
    detail = ", ".join(f"{summary['quarantined ' + r]} {r}" for r in REASONS
                       if summary["quarantined " + r])
    parts.append(f"{quarantined} quarantined" + (f" ({detail})" if detail
                                                  else ""))
    if summary["left"]:
        parts.append(f"{summary['left']} left in incoming/ (the journal "
                     "says why)")
    return ", ".join(parts)
