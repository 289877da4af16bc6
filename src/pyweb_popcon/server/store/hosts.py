"""Each host's newest message: stored, looked up, replaced.

One row per host holds its newest message; a forget message leaves only
a tombstone (host_id and when), so an older report that arrives later,
or is ingested by another machine at the same time, cannot bring it
back.  Expiry removes tombstones like any other row.  On PostgreSQL,
ingesters on several machines take an advisory lock per host.
"""

import functools
import hashlib

from packaging.version import Version

from pyweb_popcon import report
from pyweb_popcon.server import clock
from pyweb_popcon.server.store.partitions import DAY_NS, _suffix, _union


@functools.lru_cache(maxsize=4096)
def series(version):
    """The major.minor a version is published under: 4.2.11 -> 4.2."""
    release = Version(version).release + (0,)
    return f"{release[0]}.{release[1]}"


def _lock_key(host):
    """A host ID as a PostgreSQL advisory lock (a signed 64-bit number)."""
    return int.from_bytes(hashlib.blake2b(host.encode(), digest_size=8)
                          .digest(), "big", signed=True)


class Hosts:
    """The hosts of a Store, one row each."""

    def live_hosts(self):
        """Hosts in the store (tombstones of forgotten hosts aside)."""
        (hosts,), = self.query("SELECT COUNT(*) FROM hosts WHERE "
                               "forgotten = 0")
        return hosts

    def put(self, messages):
        """Store (received_ns, receipt, Report|Forget) in one transaction;
        receive times are kept to the hour (see clock.py).

        Returns a list of outcomes in input order: "new", "replaced",
        "forgotten" or "outdated" (something newer is already stored).
        """
        # Taking locks in one order keeps concurrent ingesters on one
        # PostgreSQL from deadlocking each other.
        order = sorted(range(len(messages)),
                       key=lambda i: _lock_key(messages[i][2].host_id))
        outcomes = [None] * len(messages)
        with self.transaction():
            # On PostgreSQL, locked: expiry drops none of these before the
            # commit.  New days' partitions are made now, as each holds
            # its lock to the commit: taken after a host's lock, it could
            # deadlock with an ingester waiting for that host.
            days = self._days(lock=True)
            for day in sorted({m[0] // DAY_NS for m in messages} - set(days)):
                self._add_partition(day)
            for i in order:
                outcomes[i] = self._put_one(*messages[i])
        return outcomes

    def _put_one(self, received, receipt, message):
        d = self.dialect
        host = message.host_id
        received = clock.hour(received)
        forget = isinstance(message, report.Forget)
        if forget:
            fields = (host, received, receipt, 1) + (None,) * 8
        else:
            os_ = message.os
            fields = (host, received, receipt, 0, message.date, message.format,
                      message.client, os_.vendor, os_.release, os_.arch,
                      message.virt, message.age)
        if not self.sqlite:
            # One ingester at a time per host, or two could store it in
            # two partitions.  The partitions are read after the lock, so
            # they include any another ingester made for this host.
            self.query(f"SELECT pg_advisory_xact_lock({d.p})",
                       (_lock_key(host),))
        stored = self._find(self._days(), host)
        # Which is later, with a clock that keeps hours: within one hour a
        # forget wins over a report, then the later report date; the spool
        # name breaks the ties left, so the result never depends on the
        # order messages are ingested in.
        if stored and (received, forget, "" if forget else message.date,
                       receipt) <= stored:
            return "outdated"
        if stored:
            self._delete(_suffix(stored[0] // DAY_NS), f"host_id = {d.p}",
                         (host,))
        name = _suffix(received // DAY_NS)
        self.query(f"INSERT INTO hosts_{name} VALUES ({d.marks(len(fields))})",
                   fields)
        if forget:
            return "forgotten"
        self._many(f"INSERT INTO host_frameworks_{name} VALUES ({d.marks(8)})",
                   [(host, e.name, e.version, series(e.version), e.via,
                     e.envs, None if e.used is None else int(e.used),
                     e.python or "") for e in message.frameworks])
        self._many(f"INSERT INTO host_pythons_{name} VALUES ({d.marks(2)})",
                   [(host, p) for p in message.pythons])
        return "replaced" if stored and not stored[1] else "new"

    def _find(self, days, host):
        """(received, forgotten, report date or "", receipt) of the host's
        row, or None."""
        rows = self.query(_union([
            "SELECT received, forgotten, COALESCE(date, ''), receipt FROM "
            f"hosts_{_suffix(day)} WHERE host_id = {self.dialect.p}"
            for day in days]), (host,) * len(days)) if days else []
        return rows[0] if rows else None
