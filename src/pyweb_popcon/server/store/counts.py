"""Counting hosts per bucket, partition by partition."""

import collections
import functools

from pyweb_popcon.server.store.partitions import _suffix

OTHER = "other"


class Counts:
    """The counts a Store gives for publishing."""

    def _count(self, days, table, cols, where="", params=()):
        """{(col values): distinct hosts} over `table` rows matching
        `where`: counted in each partition, then added up."""
        select = "".join(f"{c}, " for c in cols)
        group = f" GROUP BY {', '.join(cols)}" if cols else ""
        where = f" WHERE {where}" if where else ""
        totals = collections.Counter()
        for day in days:
            for *key, n in self.query(
                    f"SELECT {select}COUNT(DISTINCT host_id) FROM "
                    f"{table}_{_suffix(day)}{where}{group}", params):
                totals[tuple(key)] += n
        return {key: n for key, n in totals.items() if n}

    def _fold(self, days, table, group, key, k, where="1 = 1", params=()):
        """({(group..., bucket): hosts}, small keys): buckets under `k`
        hosts become one bucket 'other' per group, counting each host once.

        Counting every bucket first keeps the big scans on the covering
        indexes; the second query only reads the rows of small buckets.
        """
        raw = self._count(days, table, group + (key,), where, params)
        small = [b for b, n in raw.items() if n < k]
        counts = {b: n for b, n in raw.items() if n >= k}
        if small:
            # Listed in a temporary table, not in the statement: clients
            # choose these values, and there may be more of them than one
            # statement takes parameters.
            columns = [f"c{i}" for i in range(len(small[0]))]
            self.query("CREATE TEMPORARY TABLE small_buckets ("
                       + ", ".join(f"{c} TEXT" for c in columns) + ")")
            try:
                self._many("INSERT INTO small_buckets VALUES ("
                           + self.dialect.marks(len(columns)) + ")", small)
                members = (f"({', '.join(group + (key,))}) IN (SELECT "
                           f"{', '.join(columns)} FROM small_buckets)")
                other = self._count(days, table, group,
                                    f"{where} AND {members}", params)
            finally:
                self.query("DROP TABLE small_buckets")
            counts.update({g + (OTHER,): n for g, n in other.items()})
        return counts, small

    def counts(self, k):
        """Host counts for publishing, every bucket under `k` hosts folded
        into 'other' (which may itself be under `k`: aggregate decides)."""
        fw, live = "host_frameworks", "forgotten = 0"
        with self.transaction():
            days = self._days(lock=True)
            count = functools.partial(self._count, days)
            fold = functools.partial(self._fold, days)
            hosts = count("hosts", (), live).get((), 0)
            frameworks, small = fold(fw, (), "name", k)
            used = count(fw, ("name",), "used = 1")
            via, _ = fold(fw, ("name",), "via", k)
            if small:
                # The 'other' framework: every small one together.
                among = f"name IN ({self.dialect.marks(len(small))})"
                names = sum(small, ())
                used.update({(OTHER,): n for n in count(
                    fw, (), f"{among} AND used = 1", names).values()})
                other_via, _ = fold(fw, (), "via", k, among, names)
                via = {b: n for b, n in via.items() if b[:1] not in small}
                via.update({(OTHER,) + b: n for b, n in other_via.items()})
            return {
                "hosts": hosts,
                "frameworks": {name: (n, used.get((name,), 0))
                               for (name,), n in frameworks.items()},
                "via": via,
                "versions": fold(fw, ("name",), "series", k)[0],
                "os": fold("hosts", (), "os_vendor || ' ' || os_release", k,
                           live)[0],
                "pythons": fold("host_pythons", (), "python", k)[0],
                "virt": fold("hosts", (), "virt", k, live)[0],
                "age": fold("hosts", (), "age", k, live)[0],
            }
