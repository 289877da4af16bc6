"""Counting hosts per bucket, partition by partition: raw counts only
(which buckets are published, and how, is publish.rule's)."""

import collections
import concurrent.futures
import contextlib
import functools
import os
import sqlite3

from pyweb_popcon.server.store.partitions import _suffix

# What hosts are counted by, for publishing: per kind of bucket, the
# table, the columns that key a bucket, which of its rows count, and the
# partition's index that counts them in one ordered scan (None: its own
# rows).  SQLite is told which (INDEXED BY): several indexes cover most
# counts, and it would take one that is not in host order for some, then
# sort every row to count distinct hosts; PostgreSQL chooses by its
# statistics.
BUCKETS = {
    "hosts": ("hosts", (), "forgotten = 0", None),
    "frameworks": ("host_frameworks", ("name",), "", "name"),
    "used": ("host_frameworks", ("name",), "used = 1", "name"),
    "via": ("host_frameworks", ("name", "via"), "", "via"),
    "versions": ("host_frameworks", ("name", "series"), "", "series"),
    # The Python each entry runs under, where its report names it (format
    # 2 on): per framework the hosts it covers, its hosts per Python, and
    # per version series both again.
    "covered": ("host_frameworks", ("name",), "python <> ''", "name"),
    "framework_pythons": ("host_frameworks", ("name", "python"),
                          "python <> ''", "python"),
    "series_covered": ("host_frameworks", ("name", "series"),
                       "python <> ''", "series"),
    "series_pythons": ("host_frameworks", ("name", "series", "python"),
                       "python <> ''", "series_python"),
    "os": ("hosts", ("os_vendor || ' ' || os_release",), "forgotten = 0",
           None),
    "pythons": ("host_pythons", ("python",), "", "python"),
    "virt": ("hosts", ("virt",), "forgotten = 0", None),
    "age": ("hosts", ("age",), "forgotten = 0", None),
}
# SQLite runs a statement on one core: on SQLite, partitions are counted
# this many at a time, each share by a connection of its own (at 1,000,000
# hosts on 2 cores, counting takes 3 s, not 5).
READERS = min(4, len(os.sched_getaffinity(0)))


class Counts:
    """The counts a Store gives for publishing."""

    def _count(self, run, days, table, cols, where="", index=None):
        """{(col values): distinct hosts} over `table` rows matching
        `where`, read through `index` on SQLite: counted in each
        partition (the statements given to `run`), then added up."""
        select = "".join(f"{c}, " for c in cols)
        group = f" GROUP BY {', '.join(cols)}" if cols else ""
        where = f" WHERE {where}" if where else ""
        # A host has one row in hosts: no distinct hosts to look for.
        hosts = "COUNT(*)" if table == "hosts" else "COUNT(DISTINCT host_id)"
        statements = []
        for day in days:
            name = f"{table}_{_suffix(day)}"
            indexed = (f" INDEXED BY {name}_{index}"
                       if index and self.sqlite else "")
            statements.append(f"SELECT {select}{hosts} FROM "
                              f"{name}{indexed}{where}{group}")
        totals = collections.Counter()
        for rows in run(statements):
            for *key, n in rows:
                totals[tuple(key)] += n
        return {key: n for key, n in totals.items() if n}

    @contextlib.contextmanager
    def counting(self):
        """`count(kind, among=None, by=None)`, to count with in one
        transaction, so that all it says agrees: {(values of the key
        columns `by`): distinct hosts} over the rows of BUCKETS[kind]
        whose key begins with one of `among` (all rows when None).  `by`
        are indexes into the key (all of it when None)."""
        with self.transaction(), self._readers() as run:
            yield functools.partial(self._buckets, run,
                                    self._days(lock=True))

    def _serial(self, statements):
        return [self.query(statement) for statement in statements]

    @contextlib.contextmanager
    def _readers(self):
        """run(statements): their rows, on SQLite READERS statements at a
        time.  This connection takes one share of them, and each other
        share a connection of its own in a thread of its own (sqlite3
        lets other threads run while SQLite works).  They read what this
        one does: it holds the write lock (counting's transaction), so
        nothing is committed until they are done."""
        if not self.sqlite or READERS < 2:
            yield self._serial
            return
        others = [sqlite3.connect(self.path, timeout=600,
                                  isolation_level=None,
                                  check_same_thread=False)
                  for _ in range(READERS - 1)]
        try:
            for conn in others:
                conn.execute("BEGIN")
            with concurrent.futures.ThreadPoolExecutor(len(others)) as pool:
                def run(statements):
                    shares = [pool.submit(_each, conn, statements[i::READERS])
                              for i, conn in enumerate(others, 1)]
                    mine = self._serial(statements[::READERS])
                    return mine + [rows for share in shares
                                   for rows in share.result()]
                yield run
        finally:
            for conn in others:
                conn.close()

    def _buckets(self, run, days, kind, among=None, by=None):
        table, key, where, index = BUCKETS[kind]
        group = key if by is None else tuple(key[i] for i in by)
        if among is None:
            return self._count(run, days, table, group, where, index)
        if not among:
            return {}
        # Listed in a temporary table, not in the statement: clients
        # choose these values, and there may be more of them than one
        # statement takes parameters.
        columns = [f"c{i}" for i in range(len(among[0]))]
        self.query("CREATE TEMPORARY TABLE small_buckets ("
                   + ", ".join(f"{c} TEXT" for c in columns) + ")")
        try:
            self._many("INSERT INTO small_buckets VALUES ("
                       + self.dialect.marks(len(columns)) + ")", among)
            members = (f"({', '.join(key[:len(columns)])}) IN (SELECT "
                       f"{', '.join(columns)} FROM small_buckets)")
            # On this connection only: the others do not see its
            # temporary table.
            return self._count(self._serial, days, table, group,
                               " AND ".join(c for c in (where, members) if c),
                               index)
        finally:
            self.query("DROP TABLE small_buckets")


def _each(conn, statements):
    """The rows of each statement, on connection `conn`."""
    return [conn.execute(statement).fetchall() for statement in statements]
