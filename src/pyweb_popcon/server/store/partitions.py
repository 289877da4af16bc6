"""Hosts in day partitions, their views, and expiry.

Hosts are kept in partitions, one per day (UTC) messages were received
on: the tables hosts_YYYYMMDD, host_frameworks_YYYYMMDD and
host_pythons_YYYYMMDD, listed in `partitions`.  A host's rows are in the
partition of its newest message and in no other.  Expiry drops the
partitions wholly older than its cutoff, a table at a time, instead of
deleting their rows one B-tree entry at a time, and deletes rows only in
the partition the cutoff falls in.  The views hosts, host_frameworks and
host_pythons show every partition as one table, for reading the database
with SQL.
"""

import datetime

DAY_NS = 86_400 * 10**9
EPOCH = datetime.date(1970, 1, 1)

# A partition's tables (hosts first: the others refer to it), columns as
# since schema 5 (which added host_frameworks.python, '' where unknown),
# primary keys and covering indexes.  Each count is one ordered scan of
# an index (see counts.BUCKETS); (name, host_id, used, python) serves
# hosts, used and hosts with a known Python per framework, (name, series,
# host_id, python) hosts and those with a known Python per series.  A
# later schema that changes these must migrate the partitions made with
# them.
COLUMNS = {
    "hosts": ("host_id TEXT NOT NULL", "received BIGINT NOT NULL",
              "receipt TEXT NOT NULL", "forgotten INTEGER NOT NULL",
              "date TEXT", "format INTEGER", "client TEXT", "os_vendor TEXT",
              "os_release TEXT", "os_arch TEXT", "virt TEXT", "age TEXT"),
    "host_frameworks": ("host_id TEXT NOT NULL", "name TEXT NOT NULL",
                        "version TEXT NOT NULL", "series TEXT NOT NULL",
                        "via TEXT NOT NULL", "envs INTEGER NOT NULL",
                        "used INTEGER", "python TEXT NOT NULL DEFAULT ''"),
    "host_pythons": ("host_id TEXT NOT NULL", "python TEXT NOT NULL"),
}
KEYS = {"hosts": "host_id",
        "host_frameworks": "host_id, name, version, via, python",
        "host_pythons": "host_id, python"}
INDEXES = {"host_frameworks": {"name": "name, host_id, used, python",
                               "series": "name, series, host_id, python",
                               "via": "name, via, host_id",
                               "python": "name, python, host_id",
                               "series_python":
                                   "name, series, python, host_id"},
           "host_pythons": {"python": "python, host_id"}}


def _suffix(day):
    """A partition's tables are named by their day: 20558 -> 20260415."""
    return (EPOCH + datetime.timedelta(days=day)).strftime("%Y%m%d")


def _union(selects):
    """The SELECTs as one, nested so that no compound SELECT has more
    terms than SQLite allows (500)."""
    if len(selects) <= 100:
        return " UNION ALL ".join(selects)
    return _union([f"SELECT * FROM ({_union(selects[i:i + 100])}) AS p{i}"
                   for i in range(0, len(selects), 100)])


class Partitions:
    """The partitions of a Store: made, listed, shown as views, expired."""

    def _days(self, lock=False):
        """The partitions' days, oldest first.  On PostgreSQL, `lock`
        keeps expiry from dropping them until the transaction ends."""
        lock = " FOR SHARE" if lock and not self.sqlite else ""
        return [day for day, in self.query(
            f"SELECT day FROM partitions ORDER BY day{lock}")]

    def _add_partition(self, day):
        p = self.dialect.p
        if not self.sqlite:
            # One maker of partitions at a time, so that each rebuilds the
            # views with all the others' partitions in them.
            self.query("LOCK TABLE partitions IN SHARE ROW EXCLUSIVE MODE")
        if not self.query(f"INSERT INTO partitions (day) VALUES ({p}) ON "
                          "CONFLICT (day) DO NOTHING RETURNING day", (day,)):
            return      # another ingester made it meanwhile
        for table in COLUMNS:
            self._make_table(table, _suffix(day))
        self._views()

    def _make_table(self, table, name):
        """One of partition `name`'s tables, with its indexes."""
        parent = ("" if table == "hosts" else ", FOREIGN KEY (host_id) "
                  f"REFERENCES hosts_{name} (host_id)")
        columns = ", ".join(COLUMNS[table])
        self.query(f"CREATE TABLE {table}_{name} ({columns}, "
                   f"PRIMARY KEY ({KEYS[table]}){parent})"
                   + self.dialect.clustered)
        for index, keys in INDEXES.get(table, {}).items():
            self.query(f"CREATE INDEX {table}_{name}_{index} ON "
                       f"{table}_{name} ({keys})")

    def _views(self):
        """Each table's view: its partitions as one."""
        days = self._days()
        for table, columns in COLUMNS.items():
            self.query(f"DROP VIEW IF EXISTS {table}")
            empty = "SELECT " + ", ".join(
                f"CAST(NULL AS {c.split()[1]}) AS {c.split()[0]}"
                for c in columns) + " WHERE 1 = 0"
            self.query(f"CREATE VIEW {table} AS " + (_union([
                f"SELECT * FROM {table}_{_suffix(day)}" for day in days])
                if days else empty))

    def _delete(self, name, where, params):
        """The hosts of partition `name` that match `where`, and their
        rows in its other tables."""
        for table in reversed(COLUMNS):
            self.query(f"DELETE FROM {table}_{name} WHERE "
                       + (where if table == "hosts" else
                          f"host_id IN (SELECT host_id FROM hosts_{name} "
                          f"WHERE {where})"), params)

    def expire(self, cutoff_ns, progress=None):
        """Delete every host received before `cutoff_ns`; how many hosts
        (tombstones are deleted too, and not counted).  After each
        partition, `progress(n, total)` is told that n more of `total`
        are done.

        Partitions wholly older than the cutoff are dropped; rows are
        deleted only in the one the cutoff falls in.  One transaction.
        """
        p = self.dialect.p
        last = cutoff_ns // DAY_NS
        hosts, cut = 0, []
        with self.transaction():
            if not self.sqlite:
                # Once the ingesters using them are done (their rows), and
                # with no partition made meanwhile (the table).
                self.query(f"SELECT day FROM partitions WHERE day <= {p} "
                           "ORDER BY day FOR UPDATE", (last,))
                self.query("LOCK TABLE partitions IN SHARE ROW EXCLUSIVE "
                           "MODE")
            days = [day for day in self._days() if day <= last]
            sizes = [self.query("SELECT COUNT(*), COALESCE(SUM(1 - "
                                f"forgotten), 0) FROM hosts_{_suffix(day)} "
                                f"WHERE received < {p}", (cutoff_ns,))[0]
                     for day in days]
            total = sum(size for size, _ in sizes)
            if progress:
                progress(0, total)
            whole = [day for day in days if day < last]
            for table in COLUMNS if whole else ():
                self.query(f"DROP VIEW {table}")
            for day, (size, live) in zip(days, sizes):
                name = _suffix(day)
                if day in whole:
                    for table in reversed(COLUMNS):
                        self.query(f"DROP TABLE {table}_{name}")
                    self.query(f"DELETE FROM partitions WHERE day = {p}",
                               (day,))
                else:
                    self._delete(name, f"received < {p}", (cutoff_ns,))
                    cut += [f"{table}_{name}" for table in COLUMNS]
                hosts += live
                if progress:
                    progress(size, total)
            if whole:
                self._views()
        self.leave_no_copy(cut)
        return hosts
