"""The database: one schema and one set of SQL for SQLite and PostgreSQL.

Statements are written once, with ? placeholders that become %s for
psycopg; where the engines differ (locking, mostly) the code says so.
Flags are INTEGER 0/1 so both engines count them alike.  One row per host
holds its newest message; a forget message leaves only a tombstone
(host_id and when), so an older report that arrives later, or is
ingested by another machine at the same time, cannot bring it back.
Expiry removes tombstones like any other row.

Hosts are kept in partitions, one per day (UTC) messages were received
on: the tables hosts_YYYYMMDD, host_frameworks_YYYYMMDD and
host_pythons_YYYYMMDD, listed in `partitions`.  A host's rows are in the
partition of its newest message and in no other.  Expiry drops the
partitions wholly older than its cutoff, a table at a time, instead of
deleting their rows one B-tree entry at a time, and deletes rows only in
the partition the cutoff falls in.  Counts are made per partition and
added up: exact, as no host is in two.  The views hosts, host_frameworks
and host_pythons show every partition as one table, for reading the
database with SQL.
"""

import collections
import contextlib
import datetime
import functools
import hashlib
import json
import os
import sqlite3
import time

from packaging.version import Version

from pyweb_popcon import report
from pyweb_popcon.server import ServerError

# Each migration is a list of statements; schema_version says how many
# have been applied.  Never edit one that has shipped: append another.
# {clustered} is where SQLite is told to keep a table in its primary key's
# order (WITHOUT ROWID): one B-tree fewer to update per row, which is most
# of what expiry costs.  PostgreSQL has no such clause and needs none.  A
# statement in a dict is for the engine it names only.
MIGRATIONS = (
    (
        """CREATE TABLE hosts (
            host_id TEXT PRIMARY KEY,
            received BIGINT NOT NULL,
            receipt TEXT NOT NULL,
            forgotten INTEGER NOT NULL,
            date TEXT, format INTEGER, client TEXT,
            os_vendor TEXT, os_release TEXT, os_arch TEXT,
            virt TEXT, age TEXT){clustered}""",
        "CREATE INDEX hosts_received ON hosts (received)",
        """CREATE TABLE host_frameworks (
            host_id TEXT NOT NULL REFERENCES hosts (host_id),
            name TEXT NOT NULL, version TEXT NOT NULL, series TEXT NOT NULL,
            via TEXT NOT NULL, envs INTEGER NOT NULL, used INTEGER,
            PRIMARY KEY (host_id, name, version, via)){clustered}""",
        # Covering indexes: each count is one ordered index scan.
        # (name, host_id, used) serves both hosts and used per framework.
        """CREATE INDEX host_frameworks_name
            ON host_frameworks (name, host_id, used)""",
        """CREATE INDEX host_frameworks_series
            ON host_frameworks (name, series, host_id)""",
        """CREATE INDEX host_frameworks_via
            ON host_frameworks (name, via, host_id)""",
        """CREATE TABLE host_pythons (
            host_id TEXT NOT NULL REFERENCES hosts (host_id),
            python TEXT NOT NULL,
            PRIMARY KEY (host_id, python)){clustered}""",
        "CREATE INDEX host_pythons_python ON host_pythons (python, host_id)",
        """CREATE TABLE history (
            day TEXT PRIMARY KEY, hosts INTEGER NOT NULL, stats TEXT NOT NULL)""",
    ),
    (
        # Rows keyed by hid, numbered in the order the hosts' messages
        # were received, so that expiry emptied whole pages (schema 3
        # splits hosts by day instead).
        """CREATE TABLE hosts_by_hid (
            hid BIGINT PRIMARY KEY,
            host_id TEXT NOT NULL,
            received BIGINT NOT NULL,
            receipt TEXT NOT NULL,
            forgotten INTEGER NOT NULL,
            date TEXT, format INTEGER, client TEXT,
            os_vendor TEXT, os_release TEXT, os_arch TEXT,
            virt TEXT, age TEXT){clustered}""",
        """INSERT INTO hosts_by_hid
            SELECT ROW_NUMBER() OVER (ORDER BY received, receipt), host_id,
                   received, receipt, forgotten, date, format, client,
                   os_vendor, os_release, os_arch, virt, age
            FROM hosts""",
        # Which hid a host ID has now.  A table, not an index on hosts:
        # expiry deletes from it in host ID order, in one sweep, and from
        # everything else in hid order; an index would be deleted from in
        # hid order, a random page each time.
        """CREATE TABLE host_ids (
            host_id TEXT PRIMARY KEY,
            hid BIGINT NOT NULL){clustered}""",
        "INSERT INTO host_ids SELECT host_id, hid FROM hosts_by_hid",
        """CREATE TABLE frameworks_by_hid (
            hid BIGINT NOT NULL REFERENCES hosts_by_hid (hid),
            name TEXT NOT NULL, version TEXT NOT NULL, series TEXT NOT NULL,
            via TEXT NOT NULL, envs INTEGER NOT NULL, used INTEGER,
            PRIMARY KEY (hid, name, version, via)){clustered}""",
        """INSERT INTO frameworks_by_hid
            SELECT h.hid, f.name, f.version, f.series, f.via, f.envs, f.used
            FROM host_frameworks f JOIN hosts_by_hid h USING (host_id)""",
        """CREATE TABLE pythons_by_hid (
            hid BIGINT NOT NULL REFERENCES hosts_by_hid (hid),
            python TEXT NOT NULL,
            PRIMARY KEY (hid, python)){clustered}""",
        """INSERT INTO pythons_by_hid
            SELECT h.hid, p.python
            FROM host_pythons p JOIN hosts_by_hid h USING (host_id)""",
        "DROP TABLE host_frameworks",
        "DROP TABLE host_pythons",
        "DROP TABLE hosts",
        "ALTER TABLE hosts_by_hid RENAME TO hosts",
        "ALTER TABLE frameworks_by_hid RENAME TO host_frameworks",
        "ALTER TABLE pythons_by_hid RENAME TO host_pythons",
        "CREATE INDEX hosts_received ON hosts (received)",
        # Covering indexes: each count is one ordered index scan.
        # (name, hid, used) serves both hosts and used per framework.
        """CREATE INDEX host_frameworks_name
            ON host_frameworks (name, hid, used)""",
        """CREATE INDEX host_frameworks_series
            ON host_frameworks (name, series, hid)""",
        "CREATE INDEX host_frameworks_via ON host_frameworks (name, via, hid)",
        "CREATE INDEX host_pythons_python ON host_pythons (python, hid)",
        # Where hids come from: never one used before.
        {"postgresql": "CREATE SEQUENCE hosts_hid",
         "sqlite": "CREATE TABLE hosts_hid (last BIGINT NOT NULL)"},
        {"postgresql": "SELECT setval('hosts_hid', (SELECT COALESCE(MAX(hid), "
                       "0) + 1 FROM hosts), false)",
         "sqlite": "INSERT INTO hosts_hid SELECT COALESCE(MAX(hid), 0) "
                   "FROM hosts"},
    ),
    (
        # Partitions by day (see the module's docstring).  A callable is
        # a step that needs Python: here, one partition per day found.
        "ALTER TABLE hosts RENAME TO hosts_v2",
        "ALTER TABLE host_frameworks RENAME TO host_frameworks_v2",
        "ALTER TABLE host_pythons RENAME TO host_pythons_v2",
        "CREATE TABLE partitions (day BIGINT PRIMARY KEY)",
        lambda store: _split_by_day(store),
        "DROP TABLE host_frameworks_v2",
        "DROP TABLE host_pythons_v2",
        "DROP TABLE host_ids",
        "DROP TABLE hosts_v2",
        {"postgresql": "DROP SEQUENCE hosts_hid",
         "sqlite": "DROP TABLE hosts_hid"},
    ),
)

DAY_NS = 86_400 * 10**9
EPOCH = datetime.date(1970, 1, 1)

# A partition's tables (hosts first: the others refer to it), columns as
# since schema 1, primary keys and covering indexes.  Each count is one
# ordered scan of an index; (name, host_id, used) serves both hosts and
# used per framework.  A later schema that changes these must migrate
# the partitions made with them.
COLUMNS = {
    "hosts": ("host_id TEXT NOT NULL", "received BIGINT NOT NULL",
              "receipt TEXT NOT NULL", "forgotten INTEGER NOT NULL",
              "date TEXT", "format INTEGER", "client TEXT", "os_vendor TEXT",
              "os_release TEXT", "os_arch TEXT", "virt TEXT", "age TEXT"),
    "host_frameworks": ("host_id TEXT NOT NULL", "name TEXT NOT NULL",
                        "version TEXT NOT NULL", "series TEXT NOT NULL",
                        "via TEXT NOT NULL", "envs INTEGER NOT NULL",
                        "used INTEGER"),
    "host_pythons": ("host_id TEXT NOT NULL", "python TEXT NOT NULL"),
}
KEYS = {"hosts": "host_id", "host_frameworks": "host_id, name, version, via",
        "host_pythons": "host_id, python"}
INDEXES = {"host_frameworks": {"name": "name, host_id, used",
                               "series": "name, series, host_id",
                               "via": "name, via, host_id"},
           "host_pythons": {"python": "python, host_id"}}

# What hosts are counted by, for publishing: per kind of bucket, the
# table, the columns that key a bucket, and which of its rows count.
BUCKETS = {
    "hosts": ("hosts", (), "forgotten = 0"),
    "frameworks": ("host_frameworks", ("name",), ""),
    "used": ("host_frameworks", ("name",), "used = 1"),
    "via": ("host_frameworks", ("name", "via"), ""),
    "versions": ("host_frameworks", ("name", "series"), ""),
    "os": ("hosts", ("os_vendor || ' ' || os_release",), "forgotten = 0"),
    "pythons": ("host_pythons", ("python",), ""),
    "virt": ("hosts", ("virt",), "forgotten = 0"),
    "age": ("hosts", ("age",), "forgotten = 0"),
}


class StoreError(ServerError):
    """A database that cannot be opened or used."""


@functools.lru_cache(maxsize=4096)
def series(version):
    """The major.minor a version is published under: 4.2.11 -> 4.2."""
    release = Version(version).release + (0,)
    return f"{release[0]}.{release[1]}"


def _suffix(day):
    """A partition's tables are named by their day: 20558 -> 20260415."""
    return (EPOCH + datetime.timedelta(days=day)).strftime("%Y%m%d")


def _lock_key(host):
    """A host ID as a PostgreSQL advisory lock (a signed 64-bit number)."""
    return int.from_bytes(hashlib.blake2b(host.encode(), digest_size=8)
                          .digest(), "big", signed=True)


def _union(selects):
    """The SELECTs as one, nested so that no compound SELECT has more
    terms than SQLite allows (500)."""
    if len(selects) <= 100:
        return " UNION ALL ".join(selects)
    return _union([f"SELECT * FROM ({_union(selects[i:i + 100])}) AS p{i}"
                   for i in range(0, len(selects), 100)])


def _split_by_day(store):
    """Migration 3: schema 2's hosts into one partition per day."""
    in_day = "h.received >= ? AND h.received < ?"
    for day, in store.query(f"SELECT DISTINCT received / {DAY_NS} "
                            "FROM hosts_v2"):
        store._add_partition(day)
        span, name = (day * DAY_NS, (day + 1) * DAY_NS), _suffix(day)
        store.query(f"INSERT INTO hosts_{name} SELECT host_id, received, "
                    "receipt, forgotten, date, format, client, os_vendor, "
                    "os_release, os_arch, virt, age FROM hosts_v2 h WHERE "
                    f"{in_day}", span)
        store.query(f"INSERT INTO host_frameworks_{name} SELECT h.host_id, "
                    "f.name, f.version, f.series, f.via, f.envs, f.used "
                    "FROM host_frameworks_v2 f JOIN hosts_v2 h USING (hid) "
                    f"WHERE {in_day}", span)
        store.query(f"INSERT INTO host_pythons_{name} SELECT h.host_id, "
                    "p.python FROM host_pythons_v2 p JOIN hosts_v2 h "
                    f"USING (hid) WHERE {in_day}", span)
    store._views()


class Store:
    """A connection to the database named by a DATABASE_URL (and, for a
    PostgreSQL that asks for one, a password)."""

    def __init__(self, url, password=None):
        self.url = url
        if url.startswith("sqlite://"):
            self.sqlite = True
            self.path = path = url[len("sqlite://"):]
            os.makedirs(os.path.dirname(path), exist_ok=True)
            # Autocommit mode: transaction() says where each one begins.
            self.conn = sqlite3.connect(path, timeout=600,
                                        isolation_level=None)
            self._wal()
            # Spool files are deleted after a commit: it must be on disk.
            self.conn.execute("PRAGMA synchronous = FULL")
            # Expired hosts are overwritten on disk, not only unlinked.
            # Debian builds SQLite with this on; say so, not rely on it.
            self.conn.execute("PRAGMA secure_delete = ON")
            # Counting, and replacing hosts, walk indexes keyed by random
            # host IDs; the 2 MB default cache would reread the same pages
            # from disk.
            self.conn.execute("PRAGMA cache_size = -131072")
        else:
            try:
                import psycopg
            except ImportError:
                raise StoreError("DATABASE_URL names a PostgreSQL database: "
                                 "install python3-psycopg") from None
            self.sqlite = False
            try:
                self.conn = psycopg.connect(
                    url, autocommit=True,
                    **({"password": password} if password else {}))
            except psycopg.Error as e:
                raise StoreError(f"cannot connect to PostgreSQL: {e}") from e
        self.migrate()

    def _wal(self):
        # Switching a new database to WAL needs it unlocked for a moment,
        # and the busy timeout does not cover that: wait here instead.
        deadline = time.monotonic() + 600
        while True:
            try:
                self.conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def close(self):
        self.conn.close()

    @property
    def engine(self):
        """The database in words, never with a password."""
        return f"SQLite {self.path}" if self.sqlite else "PostgreSQL"

    def size(self):
        """Bytes the database takes on disk."""
        if self.sqlite:
            return sum(os.path.getsize(p) for p in (self.path,
                                                    self.path + "-wal")
                       if os.path.exists(p))
        (size,), = self.query("SELECT pg_database_size(current_database())")
        return size

    def live_hosts(self):
        """Hosts in the store (tombstones of forgotten hosts aside)."""
        (hosts,), = self.query("SELECT COUNT(*) FROM hosts WHERE "
                               "forgotten = 0")
        return hosts

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def query(self, sql, params=()):
        """Run one statement; its rows, if it returns any."""
        if not self.sqlite:
            sql = sql.replace("?", "%s")
        cur = self.conn.execute(sql, params)
        return cur.fetchall() if cur.description else []

    def _many(self, sql, rows):
        if not self.sqlite:
            sql = sql.replace("?", "%s")
        self.conn.cursor().executemany(sql, rows)

    @contextlib.contextmanager
    def transaction(self):
        if self.sqlite:
            # IMMEDIATE takes the write lock up front, so two writers
            # queue instead of failing on a lock upgrade.
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
        else:
            with self.conn.transaction():
                yield

    def migrate(self):
        """Bring the schema up to date; safe when several start at once."""
        for attempt in range(5):
            try:
                with self.transaction():
                    self.query("CREATE TABLE IF NOT EXISTS schema_version ("
                               "id INTEGER PRIMARY KEY, version INTEGER "
                               "NOT NULL)")
                    self.query("INSERT INTO schema_version (id, version) "
                               "VALUES (1, 0) ON CONFLICT (id) DO NOTHING")
                    # Locks the row: one migrator at a time.
                    self.query("UPDATE schema_version SET version = version "
                               "WHERE id = 1")
                    (version,), = self.query(
                        "SELECT version FROM schema_version WHERE id = 1")
                    if version > len(MIGRATIONS):
                        raise StoreError(f"database schema version {version} "
                                         "is newer than this program knows")
                    clustered = " WITHOUT ROWID" if self.sqlite else ""
                    engine = "sqlite" if self.sqlite else "postgresql"
                    for statements in MIGRATIONS[version:]:
                        for statement in statements:
                            if isinstance(statement, dict):
                                statement = statement.get(engine)
                            if callable(statement):
                                statement(self)
                            elif statement:
                                self.query(statement.format(
                                    clustered=clustered))
                    self.query("UPDATE schema_version SET version = ? "
                               "WHERE id = 1", (len(MIGRATIONS),))
                return
            except StoreError:
                raise
            except Exception:
                # Two first starts on one PostgreSQL can collide creating
                # schema_version; the loser tries again and finds it made.
                if attempt == 4:
                    raise

    def put(self, messages):
        """Store (received_ns, receipt, Report|Forget) in one transaction.

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
        host = message.host_id
        if isinstance(message, report.Forget):
            fields = (host, received, receipt, 1) + (None,) * 8
        else:
            os_ = message.os
            fields = (host, received, receipt, 0, message.date, report.FORMAT,
                      message.client, os_.vendor, os_.release, os_.arch,
                      message.virt, message.age)
        if not self.sqlite:
            # One ingester at a time per host, or two could store it in
            # two partitions.  The partitions are read after the lock, so
            # they include any another ingester made for this host.
            self.query("SELECT pg_advisory_xact_lock(?)", (_lock_key(host),))
        stored = self._find(self._days(), host)
        # The spool name breaks ties so the result never depends on the
        # order messages are ingested in.
        if stored and (received, receipt) <= stored[:2]:
            return "outdated"
        if stored:
            self._delete(_suffix(stored[0] // DAY_NS), "host_id = ?", (host,))
        name = _suffix(received // DAY_NS)
        self.query(f"INSERT INTO hosts_{name} VALUES "
                   f"({', '.join('?' * len(fields))})", fields)
        if isinstance(message, report.Forget):
            return "forgotten"
        self._many(f"INSERT INTO host_frameworks_{name} VALUES "
                   "(?, ?, ?, ?, ?, ?, ?)",
                   [(host, e.name, e.version, series(e.version), e.via,
                     e.envs, None if e.used is None else int(e.used))
                    for e in message.frameworks])
        self._many(f"INSERT INTO host_pythons_{name} VALUES (?, ?)",
                   [(host, p) for p in message.pythons])
        return "replaced" if stored and not stored[2] else "new"

    def _days(self, lock=False):
        """The partitions' days, oldest first.  On PostgreSQL, `lock`
        keeps expiry from dropping them until the transaction ends."""
        lock = " FOR SHARE" if lock and not self.sqlite else ""
        return [day for day, in self.query(
            f"SELECT day FROM partitions ORDER BY day{lock}")]

    def _find(self, days, host):
        """(received, receipt, forgotten) of the host's row, or None."""
        rows = self.query(_union([
            "SELECT received, receipt, forgotten FROM "
            f"hosts_{_suffix(day)} WHERE host_id = ?" for day in days]),
            (host,) * len(days)) if days else []
        return rows[0] if rows else None

    def _add_partition(self, day):
        if not self.sqlite:
            # One maker of partitions at a time, so that each rebuilds the
            # views with all the others' partitions in them.
            self.query("LOCK TABLE partitions IN SHARE ROW EXCLUSIVE MODE")
        if not self.query("INSERT INTO partitions (day) VALUES (?) ON "
                          "CONFLICT (day) DO NOTHING RETURNING day", (day,)):
            return      # another ingester made it meanwhile
        name = _suffix(day)
        clustered = " WITHOUT ROWID" if self.sqlite else ""
        for table, columns in COLUMNS.items():
            parent = ("" if table == "hosts" else ", FOREIGN KEY (host_id) "
                      f"REFERENCES hosts_{name} (host_id)")
            self.query(f"CREATE TABLE {table}_{name} ({', '.join(columns)}, "
                       f"PRIMARY KEY ({KEYS[table]}){parent}){clustered}")
            for index, keys in INDEXES.get(table, {}).items():
                self.query(f"CREATE INDEX {table}_{name}_{index} ON "
                           f"{table}_{name} ({keys})")
        self._views()

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
        last = cutoff_ns // DAY_NS
        hosts = 0
        with self.transaction():
            if not self.sqlite:
                # Once the ingesters using them are done (their rows), and
                # with no partition made meanwhile (the table).
                self.query("SELECT day FROM partitions WHERE day <= ? "
                           "ORDER BY day FOR UPDATE", (last,))
                self.query("LOCK TABLE partitions IN SHARE ROW EXCLUSIVE "
                           "MODE")
            days = [day for day in self._days() if day <= last]
            sizes = [self.query("SELECT COUNT(*), COALESCE(SUM(1 - "
                                f"forgotten), 0) FROM hosts_{_suffix(day)} "
                                "WHERE received < ?", (cutoff_ns,))[0]
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
                    self.query("DELETE FROM partitions WHERE day = ?", (day,))
                else:
                    self._delete(name, "received < ?", (cutoff_ns,))
                hosts += live
                if progress:
                    progress(size, total)
            if whole:
                self._views()
        return hosts

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
                       + ", ".join("?" * len(columns)) + ")", among)
            members = (f"({', '.join(key[:len(columns)])}) IN (SELECT "
                       f"{', '.join(columns)} FROM small_buckets)")
            return self._count(days, table, group, " AND ".join(
                c for c in (where, members) if c))
        finally:
            self.query("DROP TABLE small_buckets")

    def record_history(self, day, stats):
        """Keep `stats` (already safe to publish) as the snapshot of `day`."""
        with self.transaction():
            self.query("INSERT INTO history (day, hosts, stats) "
                       "VALUES (?, ?, ?) ON CONFLICT (day) DO UPDATE SET "
                       "hosts = excluded.hosts, stats = excluded.stats",
                       (day, stats["hosts"], json.dumps(stats)))

    def history(self):
        """[(day, stats)] oldest first."""
        return [(day, json.loads(stats)) for day, stats in
                self.query("SELECT day, stats FROM history ORDER BY day")]
