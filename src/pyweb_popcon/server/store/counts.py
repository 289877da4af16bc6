"""Counting hosts per bucket, partition by partition: raw counts only
(which buckets are published, and how, is publish.rule's)."""

import collections
import contextlib
import functools

from pyweb_popcon.server.store.partitions import _suffix

# What hosts are counted by, for publishing: per kind of bucket, the
# table, the columns that key a bucket, and which of its rows count.
BUCKETS = {
    "hosts": ("hosts", (), "forgotten = 0"),
    "frameworks": ("host_frameworks", ("name",), ""),
    "used": ("host_frameworks", ("name",), "used = 1"),
    "via": ("host_frameworks", ("name", "via"), ""),
    "versions": ("host_frameworks", ("name", "series"), ""),
    # The Python each entry runs under, where its report names it (format
    # 2 on): per framework the hosts it covers, its hosts per Python, and
    # per version series both again.
    "covered": ("host_frameworks", ("name",), "python <> ''"),
    "framework_pythons": ("host_frameworks", ("name", "python"),
                          "python <> ''"),
    "series_covered": ("host_frameworks", ("name", "series"),
                       "python <> ''"),
    "series_pythons": ("host_frameworks", ("name", "series", "python"),
                       "python <> ''"),
    "os": ("hosts", ("os_vendor || ' ' || os_release",), "forgotten = 0"),
    "pythons": ("host_pythons", ("python",), ""),
    "virt": ("hosts", ("virt",), "forgotten = 0"),
    "age": ("hosts", ("age",), "forgotten = 0"),
}


class Counts:
    """The counts a Store gives for publishing."""

    def _count(self, days, table, cols, where=""):
        """{(col values): distinct hosts} over `table` rows matching
        `where`: counted in each partition, then added up."""
        select = "".join(f"{c}, " for c in cols)
        group = f" GROUP BY {', '.join(cols)}" if cols else ""
        where = f" WHERE {where}" if where else ""
        totals = collections.Counter()
        for day in days:
            for *key, n in self.query(
                    f"SELECT {select}COUNT(DISTINCT host_id) FROM "
                    f"{table}_{_suffix(day)}{where}{group}"):
                totals[tuple(key)] += n
        return {key: n for key, n in totals.items() if n}

    @contextlib.contextmanager
    def counting(self):
        """`count(kind, among=None, by=None)`, to count with in one
        transaction, so that all it says agrees: {(values of the key
        columns `by`): distinct hosts} over the rows of BUCKETS[kind]
        whose key begins with one of `among` (all rows when None).  `by`
        are indexes into the key (all of it when None)."""
        with self.transaction():
            yield functools.partial(self._buckets, self._days(lock=True))

    def _buckets(self, days, kind, among=None, by=None):
        table, key, where = BUCKETS[kind]
        group = key if by is None else tuple(key[i] for i in by)
        if among is None:
            return self._count(days, table, group, where)
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
            return self._count(days, table, group, " AND ".join(
                c for c in (where, members) if c))
        finally:
            self.query("DROP TABLE small_buckets")
