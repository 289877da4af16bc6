"""The spool: where submissions wait, how full it may get, and the
quarantine as a maintainer sees it.

SPOOL_DIR/incoming/ holds complete submissions only: the receiver writes
each into tmp/ (same file system), fsyncs it and renames it into incoming/,
so ingest (and pyweb-popcon-ingest.path, which fires on any entry) never
sees half a file.  quarantine/ is ingest's.

The receiver refuses new submissions while incoming/ holds more than
SPOOL_MAX_FILES files or SPOOL_MAX_BYTES bytes, or the file system has
less than SPOOL_MIN_FREE bytes (or 1% of its inodes) free.  Counting a
spool of 100,000 files with a stat() each takes 0.2 s: far too much for
every request.  So each receiver process counts at most once a second (and
never spends more than a twentieth of its time counting), adds what it has
written since, and remembers the size of each file it has seen (a spool
file never changes: it is renamed in whole and only ever deleted), so a
count lists the directory and stats only the files that are new to it.
The limits may be overshot by what arrives between two counts, not more.

A quarantined submission is its file and FILE.reason ("reason: detail").
Requeueing moves the file back into incoming/ first, then removes its
.reason: a crash between the two leaves a .reason without a file, which
expire removes in time, never a quarantined file without its reason.
os.replace keeps the file's mtime, which ingest reads as its receive time.
"""

import collections
import logging
import os
import threading
import time
import uuid
from typing import NamedTuple

from pyweb_popcon.common import files

logger = logging.getLogger(__name__)

INCOMING, TMP, QUARANTINE = "incoming", "tmp", "quarantine"
# A temporary file this old has no writer left (a receiver's write takes
# milliseconds, and gunicorn kills a worker stuck for 30 s).
STALE_SECONDS = 3600
COUNT_EVERY = 1.0          # seconds, at least, between two counts
COUNT_SHARE = 0.05         # of a process's time, at most, spent counting
MIN_FREE_INODES = 0.01     # of the file system's


class Gauge:
    """How full the spool is, as one receiver process sees it."""

    def __init__(self, spool_dir, max_files, max_bytes, min_free,
                 clock=time.monotonic):
        self.incoming = os.path.join(spool_dir, INCOMING)
        self.max_files, self.max_bytes = max_files, max_bytes
        self.min_free = min_free
        self.clock = clock
        self.counting = threading.Lock()   # one thread counts at a time
        self.lock = threading.Lock()       # the figures below
        self.counted = None        # (files, bytes, free bytes, inodes ok)
        self.due = 0.0
        self.added = (0, 0)        # files and bytes written since counting
        self.refusing = None
        self.sizes = {}            # name: size, of what the last count saw
        self.total = 0             # their sum

    def count(self):
        """Count incoming/ and the free space now."""
        started = self.clock()
        sizes, names = self.sizes, set(os.listdir(self.incoming))
        # Set arithmetic, not a loop over every name: most are known.
        for name in sizes.keys() - names:
            self.total -= sizes.pop(name)
        for name in names - sizes.keys():
            try:
                sizes[name] = os.stat(os.path.join(self.incoming, name),
                                      follow_symlinks=False).st_size
            except FileNotFoundError:      # ingested meanwhile
                continue
            self.total += sizes[name]
        files, size = len(sizes), self.total
        fs = os.statvfs(self.incoming)
        inodes_ok = not fs.f_files or (fs.f_favail
                                       >= fs.f_files * MIN_FREE_INODES)
        took = self.clock() - started
        with self.lock:
            self.counted = (files, size, fs.f_bavail * fs.f_frsize,
                            inodes_ok)
            self.added = (0, 0)
            self.due = started + max(COUNT_EVERY, took / COUNT_SHARE)

    def full(self):
        """Why no submission may be added now, or None."""
        if self.counted is None or self.clock() >= self.due:
            # The others go on with the last count meanwhile.
            if self.counting.acquire(blocking=self.counted is None):
                try:
                    if self.counted is None or self.clock() >= self.due:
                        self.count()
                finally:
                    self.counting.release()
        with self.lock:
            files, size, free, inodes_ok = self.counted
            files += self.added[0]
            size += self.added[1]
            free -= self.added[1]
            why = None
            if files >= self.max_files:
                why = f"{files} files in {self.incoming} (SPOOL_MAX_FILES)"
            elif size >= self.max_bytes:
                why = f"{size} bytes in {self.incoming} (SPOOL_MAX_BYTES)"
            elif free < self.min_free:
                why = (f"{free} bytes free on the file system of "
                       f"{self.incoming} (SPOOL_MIN_FREE)")
            elif not inodes_ok:
                why = f"under 1% of the inodes free for {self.incoming}"
            # Said when it starts and when it ends, not per request: a
            # flood must not flood the journal as well.
            if why and not self.refusing:
                logger.warning("refusing submissions: %s", why)
            elif self.refusing and not why:
                logger.warning("taking submissions again (refused while: "
                               "%s)", self.refusing)
            self.refusing = why
        return why

    def add(self, size):
        """Count a submission this process has just written."""
        with self.lock:
            self.added = (self.added[0] + 1, self.added[1] + size)


def store(spool_dir, body, gauge):
    """Put a complete submission into incoming/: written into tmp/,
    fsynced, renamed; counted by `gauge`.  Its name, the receipt; OSError
    when it cannot be written.  The receiver and the DNS receiver both
    store this way, so ingest sees one kind of spool."""
    name = uuid.uuid4().hex
    files.write_atomic(os.path.join(spool_dir, INCOMING, name), body,
                       mode=0o640, tmp_dir=os.path.join(spool_dir, TMP))
    gauge.add(len(body))
    return name


def remove_stale(spool_dir, now=None):
    """Delete temporary files no writer is left for: everything in tmp/,
    and dot-files in incoming/ (where receivers before tmp/ wrote theirs),
    older than STALE_SECONDS.  How many were deleted."""
    cutoff = (now if now is not None else time.time()) - STALE_SECONDS
    removed = 0
    for directory, only_dot_files in ((TMP, False), (INCOMING, True)):
        try:
            entries = list(os.scandir(os.path.join(spool_dir, directory)))
        except FileNotFoundError:
            continue
        for entry in entries:
            if only_dot_files and not entry.name.startswith("."):
                continue
            try:
                if (entry.is_file(follow_symlinks=False)
                        and entry.stat(follow_symlinks=False).st_mtime
                        < cutoff):
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                continue
    return removed


class Backlog(NamedTuple):
    files: int
    oldest: float | None      # the oldest file's mtime, or None


def _entries(directory):
    try:
        with os.scandir(directory) as it:
            return [e for e in it if not e.name.startswith(".")
                    and e.is_file(follow_symlinks=False)]
    except FileNotFoundError:
        return []


def backlog(spool_dir):
    """What waits in incoming/ for ingest."""
    times = []
    for entry in _entries(os.path.join(spool_dir, INCOMING)):
        try:
            times.append(entry.stat(follow_symlinks=False).st_mtime)
        except FileNotFoundError:
            continue
    return Backlog(len(times), min(times) if times else None)


def _reason(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.readline().split(":", 1)[0].strip() or "unknown"
    except FileNotFoundError:
        return None


def quarantined(spool_dir):
    """{name: reason code} of every quarantined submission."""
    directory = os.path.join(spool_dir, QUARANTINE)
    names = {e.name for e in _entries(directory)}
    found = {}
    for name in names:
        if name.endswith(".reason") or name + ".reason" not in names:
            continue
        reason = _reason(os.path.join(directory, name + ".reason"))
        if reason:
            found[name] = reason
    return found


def by_reason(spool_dir):
    """Counter {reason code: submissions} of the quarantine."""
    return collections.Counter(quarantined(spool_dir).values())


def requeue(spool_dir, reason=None):
    """Move quarantined submissions (of `reason`, or all) back into
    incoming/ with their receive times; how many."""
    directory = os.path.join(spool_dir, QUARANTINE)
    incoming = os.path.join(spool_dir, INCOMING)
    moved = 0
    for name, why in sorted(quarantined(spool_dir).items()):
        if reason is not None and why != reason:
            continue
        try:
            os.replace(os.path.join(directory, name),
                       os.path.join(incoming, name))
        except FileNotFoundError:       # requeued or expired meanwhile
            continue
        try:
            os.unlink(os.path.join(directory, name + ".reason"))
        except FileNotFoundError:
            pass
        moved += 1
    return moved
