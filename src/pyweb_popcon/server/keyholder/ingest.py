"""Ingest: spool -> database, in parallel batches, safe to kill at any point.

Each batch is decrypted by one gpg process, as many at a time as there are
cores, while this thread validates finished batches with the shared report
module and stores them.  A spool file is deleted only after the transaction
holding its message has committed; since a message replaces a row only when
it was received later (or, at the same time, has a later spool name),
storing it twice changes nothing, so a rerun after a crash ends where one
clean run would.

One submission, one fate: every entry waiting in the spool but the
receivers' files being written is stored, dropped as outdated, or
quarantined with its reason (see spool.py).  Only a gpg that hangs or is
killed leaves its batch where it is, for the next run.
"""

import collections
import concurrent.futures
import logging
import os

from pyweb_popcon import report
from pyweb_popcon.server.keyholder.gpg import (GPGError, decrypt_batch,
                                              stop_agent)
from pyweb_popcon.server.progress import bar
from pyweb_popcon.server.spool import Spool

logger = logging.getLogger(__name__)

BATCH = 500          # files per gpg process: amortises its start-up
# Why a submission is in quarantine, in the order a submission is looked
# at; pyweb-popcon-server(8) says what each means.
REASONS = ("not-a-file", "not-openpgp", "not-encrypted", "signed",
           "symmetric", "wrong-key", "undecryptable", "too-large", "nested",
           "invalid-json", "invalid-report")


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


def quarantine(spool, name, reason, detail, summary):
    """Quarantine the entry `name`, counted in `summary`; if it cannot be
    moved, it is left (and said so)."""
    try:
        moved = spool.move_to_quarantine(name, reason, detail)
    except OSError as e:
        # A directory not ours to move, say: it stays, the rest goes on.
        logger.error("ingest: cannot move %r to %s/ (%s): %s", name,
                     Spool.QUARANTINE, reason, e.strerror)
        summary["left"] += 1
    else:
        summary["quarantined " + reason] += moved


def run(store, spool_dir, gnupg_home, gpg_timeout, workers=None):
    """Ingest everything waiting in the spool at `spool_dir`; a Counter of
    what happened ("left" counts files a failed gpg left for the next
    run)."""
    spool = Spool(spool_dir)
    os.makedirs(spool.incoming, exist_ok=True)
    with spool.ingest_lock():
        try:
            summary = _ingest(store, spool, gnupg_home, gpg_timeout,
                              workers)
        finally:
            stop_agent(gnupg_home)
    logger.info("ingest: %s", describe(summary))
    return summary


def _ingest(store, spool, gnupg_home, gpg_timeout, workers):
    found, others = spool.waiting()
    summary = collections.Counter()
    for name, what in others:
        quarantine(spool, name, "not-a-file",
                   f"{what}, not a regular file; never followed", summary)
    workers = workers or len(os.sched_getaffinity(0))
    size = max(1, min(BATCH, -(-len(found) // workers)))
    batches = [found[i:i + size] for i in range(0, len(found), size)]
    with bar(len(found), "report", "ingest") as progress, \
            concurrent.futures.ThreadPoolExecutor(workers) as pool:
        decrypted = pool.map(
            lambda batch: _decrypt(gnupg_home, spool, batch, gpg_timeout),
            batches)
        for batch, outcomes in zip(batches, decrypted):
            if outcomes is None:
                summary["left"] += len(batch)
            else:
                _store(store, spool, batch, outcomes, summary)
            progress.update(len(batch))
    return summary


def _decrypt(gnupg_home, spool, batch, timeout):
    """The batch's outcomes, or None (and why, in the log) when gpg did
    not get through it: then its files stay for the next run."""
    try:
        return decrypt_batch(
            gnupg_home, [spool.path(n) for n, _ in batch], timeout)
    except (GPGError, OSError) as e:
        logger.error("ingest: %s; its batch of %d files stays in %s/ for "
                     "the next run", e, len(batch), Spool.INCOMING)
        return None


def _store(store, spool, batch, outcomes, summary):
    good, names = [], []
    for (name, received), outcome in zip(batch, outcomes):
        message, bad = classify(outcome)
        if bad:
            quarantine(spool, name, *bad, summary)
        else:
            # The database holds text: a name's undecodable bytes as \xNN.
            receipt = os.fsencode(name).decode("utf-8", "backslashreplace")
            good.append((received, receipt, message))
            names.append(name)
    for outcome in store.put(good):
        summary[outcome] += 1
    # Only now, with the transaction committed, may the files go.
    for name in names:
        spool.remove(name)


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
        parts.append(f"{summary['left']} left in {Spool.INCOMING}/ (the "
                     "journal says why)")
    return ", ".join(parts)
