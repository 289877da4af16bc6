"""The spool: where submissions wait, and the quarantine.  Its one owner:
no other module knows a directory, a file name or the .reason format.

SPOOL_DIR/incoming/ holds complete submissions only: a receiver writes
each into tmp/ (same file system), fsyncs it and renames it into incoming/,
so ingest (and pyweb-popcon-ingest.path, which fires on any entry) never
sees half a file.  Ingest holds ingest.lock while it works.

A quarantined submission is an entry of quarantine/, whatever it is (a
file; a directory, link or FIFO as ingest found it in incoming/), and
NAME.reason beside it ("reason: detail"), written first.  Requeueing
moves the entry back into incoming/ first, then removes its .reason: a
crash between the two leaves a .reason without an entry, which expiry
removes in time, never a quarantined entry without its reason.  Expiry
removes an entry first, then its .reason, for the same reason.
A file's mtime is its receive time, to the hour (see clock.py): set when
it is stored, kept by os.replace, read by ingest.  A .reason file's is the
hour it was quarantined in.
"""

import collections
import contextlib
import fcntl
import hashlib
import itertools
import logging
import os
import shutil
import stat
import time
import uuid
from typing import NamedTuple

from pyweb_popcon.common import files
from pyweb_popcon.server import clock

logger = logging.getLogger(__name__)

# A temporary file this old has no writer left (a receiver's write takes
# milliseconds, and gunicorn kills a worker stuck for 30 s).
STALE_SECONDS = 3600
MAX_REASON = 500     # characters in a .reason line
NAME_MAX = 255       # bytes in a file name (Linux file systems)

_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFLNK: "a symbolic link",
          stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket",
          stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device"}


class Backlog(NamedTuple):
    files: int
    oldest: float | None      # the oldest file's mtime, or None


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


def _reason_code(data):
    """The reason code: the first word of a .reason file's `data`."""
    line = data.decode("utf-8", "replace").split("\n", 1)[0]
    return line.split(":", 1)[0].strip() or "unknown"


class Spool:
    """The spool under the directory `top` (SPOOL_DIR)."""

    INCOMING, TMP, QUARANTINE = "incoming", "tmp", "quarantine"
    LOCK = "ingest.lock"
    REASON = ".reason"

    def __init__(self, top):
        self.top = top
        self.incoming = os.path.join(top, self.INCOMING)
        self.tmp = os.path.join(top, self.TMP)
        self.quarantine = os.path.join(top, self.QUARANTINE)

    # -- incoming/ ------------------------------------------------------

    def store(self, body):
        """Put a complete submission into incoming/: written into tmp/,
        fsynced, renamed.  Its name, the receipt; OSError when it cannot
        be written.  Both receivers store this way, so ingest sees one
        kind of spool."""
        name = uuid.uuid4().hex
        files.write_atomic(self.path(name), body, mode=0o640,
                           tmp_dir=self.tmp, time_ns=clock.this_hour())
        return name

    def path(self, name):
        """The path of the submission `name` in incoming/."""
        return os.path.join(self.incoming, name)

    def waiting(self):
        """([(name, receive time)] of the regular files, [(name, what it
        is)] of the other entries) in incoming/, but for the receivers'
        files being written (dot-files).  A receive time is the hour of
        the file's mtime, in nanoseconds (files stored before the clock
        kept hours have finer ones)."""
        found, others = [], []
        with os.scandir(self.incoming) as it:
            for entry in it:
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    if not entry.name.startswith("."):
                        found.append((entry.name,
                                      clock.hour(st.st_mtime_ns)))
                else:
                    others.append((entry.name, _KINDS.get(
                        stat.S_IFMT(st.st_mode), "an entry of another kind")))
        return sorted(found), sorted(others)

    def remove(self, name):
        """Delete the submission `name` from incoming/ (it is stored)."""
        try:
            os.unlink(self.path(name))
        except FileNotFoundError:
            pass

    def backlog(self):
        """What waits in incoming/ for ingest: the submissions waiting()
        lists."""
        try:
            found, _ = self.waiting()
        except FileNotFoundError:
            return Backlog(0, None)
        return Backlog(len(found), min(t for _, t in found) / 1e9
                       if found else None)

    def remove_stale(self, now=None):
        """Delete temporary files no writer is left for: everything in
        tmp/, and dot-files in incoming/ (where receivers before tmp/
        wrote theirs), older than STALE_SECONDS.  How many were deleted."""
        cutoff = (now if now is not None else time.time()) - STALE_SECONDS
        removed = 0
        for directory, only_dot_files in ((self.tmp, False),
                                          (self.incoming, True)):
            try:
                entries = list(os.scandir(directory))
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

    # -- the lock -------------------------------------------------------

    @contextlib.contextmanager
    def ingest_lock(self, create=True):
        """Hold the ingest lock.  Without `create`, only if ingest ever
        ran (made its file): what must not run under an ingest."""
        flags = os.O_RDWR | os.O_CREAT if create else os.O_RDONLY
        try:
            fd = os.open(os.path.join(self.top, self.LOCK), flags, 0o640)
        except FileNotFoundError:
            if create:
                raise
            yield
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                logger.info("another ingest is running on %s; waiting",
                            self.top)
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- quarantine/ ----------------------------------------------------

    def move_to_quarantine(self, name, reason, detail):
        """Move incoming/NAME, whatever it is, to quarantine/ beside its
        .reason, written first.  False when NAME was gone meanwhile;
        OSError when it cannot be moved (then no .reason is left)."""
        kept = self._quarantine_name(name)
        if kept != name:
            detail += f"; in {self.INCOMING}/ as {name!r}"
        reason_path = os.path.join(self.quarantine, kept + self.REASON)
        files.write_atomic(reason_path,
                           (reason_line(reason, detail) + "\n").encode(),
                           mode=0o640, time_ns=clock.this_hour())
        try:
            os.replace(self.path(name), os.path.join(self.quarantine, kept))
        except FileNotFoundError:       # taken away by hand meanwhile
            os.unlink(reason_path)
            return False
        except OSError:
            os.unlink(reason_path)
            raise
        # Whatever put it in incoming/ (a receiver keeps hours already).
        moved = os.path.join(self.quarantine, kept)
        with contextlib.suppress(OSError):
            at = clock.hour(os.lstat(moved).st_mtime_ns)
            os.utime(moved, ns=(at, at), follow_symlinks=False)
        return True

    def _quarantine_name(self, name):
        """NAME itself, unless NAME.reason would be too long for a file
        name, NAME looks like a .reason file, or quarantine/NAME exists:
        then a name made from NAME's hash."""
        raw = os.fsencode(name)
        if (len(raw) + len(self.REASON) <= NAME_MAX
                and not name.endswith(self.REASON)
                and not os.path.lexists(os.path.join(self.quarantine, name))):
            return name
        digest = hashlib.sha256(raw).hexdigest()[:32]
        for n in itertools.count():
            kept = f"renamed-{digest}-{n}"
            if not os.path.lexists(os.path.join(self.quarantine, kept)):
                return kept

    def _open_quarantine(self):
        """quarantine/ as a files.Directory (links in it never followed),
        or None when there is none yet."""
        try:
            return files.Directory.open(self.quarantine)
        except FileNotFoundError:
            return None

    def quarantined(self):
        """{name: reason code} of every quarantined entry, file or not."""
        directory = self._open_quarantine()
        if directory is None:
            return {}
        found = {}
        with directory:
            names = set(directory.names())
            for name in names:
                if name.endswith(self.REASON) or \
                        name + self.REASON not in names:
                    continue
                try:
                    found[name] = _reason_code(
                        directory.read(name + self.REASON))
                except FileNotFoundError:   # requeued or expired meanwhile
                    continue
        return found

    def by_reason(self):
        """Counter {reason code: entries} of the quarantine."""
        return collections.Counter(self.quarantined().values())

    def requeue(self, reason=None):
        """Move quarantined entries (of `reason`, or all) back into
        incoming/ whole, files with their receive times; how many."""
        moved = 0
        for name, why in sorted(self.quarantined().items()):
            if reason is not None and why != reason:
                continue
            try:
                os.replace(os.path.join(self.quarantine, name),
                           self.path(name))
            except FileNotFoundError:       # requeued or expired meanwhile
                continue
            try:
                os.unlink(os.path.join(self.quarantine, name + self.REASON))
            except FileNotFoundError:
                pass
            moved += 1
        return moved

    def expire(self, cutoff_ns):
        """Delete every entry of quarantine/ last modified at `cutoff_ns`
        or before (a file's mtime is its receive time), with its .reason;
        a directory without following any link in it.  How many entries
        that are not .reason files were deleted."""
        directory = self._open_quarantine()
        if directory is None:
            return 0
        removed = 0
        with directory:
            names = set(directory.names())
            for name in sorted(names):
                is_reason = name.endswith(self.REASON)
                if is_reason and name[:-len(self.REASON)] in names:
                    continue            # goes with its entry
                try:
                    st = directory.lstat(name)
                    if st.st_mtime_ns > cutoff_ns:
                        continue
                    if stat.S_ISDIR(st.st_mode):
                        # Through file descriptors on Linux: no link in
                        # it is followed, even as root by hand.
                        shutil.rmtree(name, dir_fd=directory.fd)
                    else:
                        directory.unlink(name)
                except FileNotFoundError:
                    continue
                except OSError as e:
                    logger.error("expire: cannot delete %r from %s: %s",
                                 name, self.quarantine, e)
                    continue
                if not is_reason:
                    directory.unlink(name + self.REASON)
                    removed += 1
        return removed
