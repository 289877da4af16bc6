"""The spool as a maintainer sees it: the backlog waiting in incoming/,
and quarantine/ by reason, from which submissions can be requeued.

A quarantined submission is its file and FILE.reason ("reason: detail").
Requeueing moves the file back into incoming/ first, then removes its
.reason: a crash between the two leaves a .reason without a file, which
expire removes in time, never a quarantined file without its reason.
os.replace keeps the file's mtime, which ingest reads as its receive time.
"""

import collections
import os
from typing import NamedTuple


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
    for entry in _entries(os.path.join(spool_dir, "incoming")):
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
    directory = os.path.join(spool_dir, "quarantine")
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
    directory = os.path.join(spool_dir, "quarantine")
    incoming = os.path.join(spool_dir, "incoming")
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

