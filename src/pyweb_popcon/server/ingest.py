"""Ingest: spool -> database, in parallel batches, safe to kill at any point.

Each batch is decrypted by one gpg process, as many at a time as there are
cores, while this thread validates finished batches with the shared report
module and stores them.  A spool file is deleted only after the transaction
holding its message has committed; since a message replaces a row only when
it was received later (or, at the same time, has a later spool name),
storing it twice changes nothing, so a rerun after a crash ends where one
clean run would.  Bad submissions move to quarantine/ next to a .reason
file, which is written first so a quarantined file always has one.
"""

import collections
import concurrent.futures
import fcntl
import logging
import os

from pyweb_popcon import report
from pyweb_popcon.common import files
from pyweb_popcon.server.gpg import decrypt_batch, stop_agent
from pyweb_popcon.server.progress import bar

logger = logging.getLogger(__name__)

BATCH = 500          # files per gpg process: amortises its start-up
REASONS = ("undecryptable", "wrong-key", "invalid-json", "invalid-report")


def spool_files(incoming):
    """[(name, mtime_ns)] of every regular, non-dot file in `incoming`."""
    found = []
    with os.scandir(incoming) as it:
        for entry in it:
            if entry.name.startswith(".") or not entry.is_file(
                    follow_symlinks=False):
                continue
            try:
                found.append((entry.name, entry.stat().st_mtime_ns))
            except FileNotFoundError:
                continue
    return sorted(found)


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


def quarantine(spool_dir, name, reason, detail):
    directory = os.path.join(spool_dir, "quarantine")
    files.write_atomic(os.path.join(directory, name + ".reason"),
                       f"{reason}: {detail}\n".encode(), mode=0o640)
    os.replace(os.path.join(spool_dir, "incoming", name),
               os.path.join(directory, name))


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


def run(store, spool_dir, gnupg_home, workers=None):
    """Ingest everything in SPOOL_DIR/incoming; a Counter of what happened."""
    incoming = os.path.join(spool_dir, "incoming")
    os.makedirs(incoming, exist_ok=True)
    fd = lock(spool_dir)
    try:
        found = spool_files(incoming)
        workers = workers or len(os.sched_getaffinity(0))
        size = max(1, min(BATCH, -(-len(found) // workers)))
        batches = [found[i:i + size] for i in range(0, len(found), size)]
        summary = collections.Counter()
        with bar(len(found), "report", "ingest") as progress, \
                concurrent.futures.ThreadPoolExecutor(workers) as pool:
            decrypted = pool.map(
                lambda batch: decrypt_batch(
                    gnupg_home, [os.path.join(incoming, n) for n, _ in batch]),
                batches)
            for batch, outcomes in zip(batches, decrypted):
                _store(store, spool_dir, batch, outcomes, summary)
                progress.update(len(batch))
    finally:
        stop_agent(gnupg_home)
        os.close(fd)
    logger.info("ingest: %s", describe(summary))
    return summary


def _store(store, spool_dir, batch, outcomes, summary):
    good = []
    for (name, received), outcome in zip(batch, outcomes):
        message, bad = classify(outcome)
        if bad:
            quarantine(spool_dir, name, *bad)
            summary["quarantined " + bad[0]] += 1
        else:
            good.append((received, name, message))
    for outcome in store.put(good):
        summary[outcome] += 1
    # Only now, with the transaction committed, may the files go.
    for _, name, _ in good:
        try:
            os.unlink(os.path.join(spool_dir, "incoming", name))
        except FileNotFoundError:
            pass


def describe(summary):
    """One line: ingested, replaced, forgotten, outdated, quarantined."""
    parts = [f"{summary['new'] + summary['replaced']} ingested",
             f"{summary['replaced']} replaced",
             f"{summary['forgotten']} forgotten",
             f"{summary['outdated']} outdated"]
    quarantined = sum(summary["quarantined " + r] for r in REASONS)
    detail = ", ".join(f"{summary['quarantined ' + r]} {r}" for r in REASONS
                       if summary["quarantined " + r])
    parts.append(f"{quarantined} quarantined" + (f" ({detail})" if detail
                                                  else ""))
    return ", ".join(parts)
