"""How full the spool may get before the receivers refuse submissions.

The receiver refuses new submissions while the spool's incoming directory
holds more than SPOOL_MAX_FILES files or SPOOL_MAX_BYTES bytes, or the
file system has less than SPOOL_MIN_FREE bytes (or 1% of its inodes)
free.  Counting a spool of 100,000 files with a stat() each takes 0.2 s:
far too much for every request.  So each receiver process counts at most
once a second (and never spends more than a twentieth of its time
counting), adds what it has written since, and remembers the size of each
file it has seen (a spool file never changes: it is renamed in whole and
only ever deleted), so a count lists the directory and stats only the
files that are new to it.  The limits may be overshot by what arrives
between two counts, not more.
"""

import logging
import os
import threading
import time

from pyweb_popcon.server.spool import Spool

logger = logging.getLogger(__name__)

COUNT_EVERY = 1.0          # seconds, at least, between two counts
COUNT_SHARE = 0.05         # of a process's time, at most, spent counting
MIN_FREE_INODES = 0.01     # of the file system's


class Gauge:
    """How full the spool is, as one receiver process sees it."""

    def __init__(self, spool, max_files, max_bytes, min_free,
                 clock=time.monotonic):
        self.incoming = spool.incoming
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


def from_config(conf):
    """The Gauge of the spool a loaded configuration names."""
    return Gauge(Spool(conf["SPOOL_DIR"]), conf["SPOOL_MAX_FILES"],
                 conf["SPOOL_MAX_BYTES"], conf["SPOOL_MIN_FREE"])
