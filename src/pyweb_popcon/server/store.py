"""The database: one schema and one set of SQL for SQLite and PostgreSQL.

Statements are written once, with ? placeholders that become %s for
psycopg; only where hids come from differs (see _next_hid).  Flags
are INTEGER 0/1 so both engines count them alike.  One row per host holds
its newest message; a forget message leaves only a tombstone (host_id and
when), so an older report that arrives later, or is ingested by another
machine at the same time, cannot bring it back.  Expiry removes
tombstones like any other row.

Rows are keyed by `hid`, a number each stored message gets in the order
messages are stored, not by the random host ID: a host's rows are written
anew with each report, so the hosts that stopped reporting 20 days ago
are the lowest numbers, together at the start of every table and index.
Expiry then empties whole pages instead of a few rows on every page.
"""

import contextlib
import functools
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
        # Rows keyed by hid (see the module's docstring), numbered in the
        # order the hosts' messages were received.
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
)

_INSERT = """
INSERT INTO hosts (hid, host_id, received, receipt, forgotten, date, format,
                   client, os_vendor, os_release, os_arch, virt, age)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""

OTHER = "other"
# Hosts deleted per step of expire (a step of its progress bar).
EXPIRE_BATCH = 50_000


class StoreError(ServerError):
    """A database that cannot be opened or used."""


@functools.lru_cache(maxsize=4096)
def series(version):
    """The major.minor a version is published under: 4.2.11 -> 4.2."""
    release = Version(version).release + (0,)
    return f"{release[0]}.{release[1]}"


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
            # Expiry and counting walk indexes keyed by random host IDs;
            # the 2 MB default cache would reread the same pages from disk.
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
                            if statement:
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
        # Taking row locks in host_id order keeps concurrent ingesters on
        # one PostgreSQL from deadlocking each other.
        order = sorted(range(len(messages)), key=lambda i: messages[i][2].host_id)
        outcomes = [None] * len(messages)
        with self.transaction():
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
        # PostgreSQL: the entry stays locked until commit, so the host row
        # read after it (by a statement of its own, which sees what was
        # committed meanwhile) is what another ingester left.
        lock = "" if self.sqlite else " FOR UPDATE"
        while True:
            entry = self.query("SELECT hid FROM host_ids WHERE host_id = "
                               f"?{lock}", (host,))
            if entry:
                break
            hid = self._next_hid()
            if self.query("INSERT INTO host_ids (host_id, hid) VALUES (?, ?) "
                          "ON CONFLICT (host_id) DO NOTHING RETURNING hid",
                          (host, hid)):
                self.query(_INSERT, (hid,) + fields)
                self._put_children(hid, message)
                return ("forgotten" if isinstance(message, report.Forget)
                        else "new")
            # Another ingester stored this host since: compare with that.
        (old,), = entry
        stored = self.query("SELECT received, receipt, forgotten FROM hosts "
                            "WHERE hid = ?", (old,))
        # The spool name breaks ties so the result never depends on the
        # order messages are ingested in.  An entry whose host row someone
        # deleted by hand stands for no host.
        if stored and (received, receipt) <= stored[0][:2]:
            return "outdated"
        for table in ("host_frameworks", "host_pythons", "hosts"):
            self.query(f"DELETE FROM {table} WHERE hid = ?", (old,))
        hid = self._next_hid()
        self.query("UPDATE host_ids SET hid = ? WHERE host_id = ?",
                   (hid, host))
        self.query(_INSERT, (hid,) + fields)
        self._put_children(hid, message)
        if isinstance(message, report.Forget):
            return "forgotten"
        return "replaced" if stored and not stored[0][2] else "new"

    def _next_hid(self):
        """A hid never given before.  SQLite has no sequences, and one
        writer at a time: a one-row table does."""
        (hid,), = self.query("UPDATE hosts_hid SET last = last + 1 "
                             "RETURNING last" if self.sqlite else
                             "SELECT nextval('hosts_hid')")
        return hid

    def _put_children(self, hid, message):
        if isinstance(message, report.Forget):
            return
        self._many("INSERT INTO host_frameworks (hid, name, version, "
                   "series, via, envs, used) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   [(hid, e.name, e.version, series(e.version), e.via,
                     e.envs, None if e.used is None else int(e.used))
                    for e in message.frameworks])
        self._many("INSERT INTO host_pythons (hid, python) VALUES (?, ?)",
                   [(hid, p) for p in message.pythons])

    def expire(self, cutoff_ns, progress=None):
        """Delete every host received before `cutoff_ns`; how many hosts
        (tombstones are deleted too, and not counted).  After each batch,
        `progress(n, total)` is told that n more of `total` are done.

        The old hosts have the lowest hids (see the module's docstring):
        deleted in hid order, they empty whole pages at the start of each
        table and index; host_ids is swept once, in host ID order, at the
        end.  One transaction: committing as it goes would write the
        pages of host_ids, where the old hosts lie all over, once per
        commit instead of once; ingest waits seconds, once.
        """
        hosts = 0
        # Made inside the transaction, so a rollback takes it away too.
        with self.transaction():
            self.query("CREATE TEMPORARY TABLE expiring (hid BIGINT "
                       "PRIMARY KEY, host_id TEXT NOT NULL)")
            self.query("INSERT INTO expiring SELECT hid, host_id FROM hosts "
                       "WHERE received < ?", (cutoff_ns,))
            (total,), = self.query("SELECT COUNT(*) FROM expiring")
            if progress:
                progress(0, total)
            doomed = ("hid IN (SELECT hid FROM expiring "
                      "WHERE hid > ? AND hid <= ?)")
            after = 0       # hids start at 1
            for done in range(0, total, EXPIRE_BATCH):
                (last,), = self.query(
                    "SELECT MAX(hid) FROM (SELECT hid FROM expiring WHERE "
                    "hid > ? ORDER BY hid LIMIT ?) AS batch",
                    (after, EXPIRE_BATCH))
                self.query(f"DELETE FROM host_frameworks WHERE {doomed}",
                           (after, last))
                self.query(f"DELETE FROM host_pythons WHERE {doomed}",
                           (after, last))
                gone = self.query(f"DELETE FROM hosts WHERE {doomed} "
                                  "RETURNING forgotten", (after, last))
                hosts += sum(1 for forgotten, in gone if not forgotten)
                after = last
                if progress:
                    progress(min(EXPIRE_BATCH, total - done), total)
            # A host stored anew since the list was made has a new hid and
            # keeps its entry.
            self.query("DELETE FROM host_ids WHERE (host_id, hid) IN "
                       "(SELECT host_id, hid FROM expiring)")
            self.query("DROP TABLE expiring")
        return hosts

    def _count(self, table, cols, where="", params=()):
        """{(col values): distinct hosts} over `table` rows matching `where`."""
        select = "".join(f"{c}, " for c in cols)
        group = f" GROUP BY {', '.join(cols)}" if cols else ""
        rows = self.query(f"SELECT {select}COUNT(DISTINCT hid) FROM "
                          f"{table}{' WHERE ' + where if where else ''}"
                          f"{group}", params)
        return {tuple(r[:-1]): r[-1] for r in rows if r[-1]}

    def _fold(self, table, group, key, k, where="1 = 1", params=()):
        """({(group..., bucket): hosts}, small keys): buckets under `k`
        hosts become one bucket 'other' per group, counting each host once.

        Counting every bucket first keeps the big scans on the covering
        indexes; the second query only reads the rows of small buckets.
        """
        raw = self._count(table, group + (key,), where, params)
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
                           + ", ".join("?" * len(columns)) + ")", small)
                members = (f"({', '.join(group + (key,))}) IN (SELECT "
                           f"{', '.join(columns)} FROM small_buckets)")
                other = self._count(table, group, f"{where} AND {members}",
                                    params)
            finally:
                self.query("DROP TABLE small_buckets")
            counts.update({g + (OTHER,): n for g, n in other.items()})
        return counts, small

    def counts(self, k):
        """Host counts for publishing, every bucket under `k` hosts folded
        into 'other' (which may itself be under `k`: aggregate decides)."""
        fw, live = "host_frameworks", "forgotten = 0"
        with self.transaction():
            (hosts,), = self.query(f"SELECT COUNT(*) FROM hosts WHERE {live}")
            frameworks, small = self._fold(fw, (), "name", k)
            used = self._count(fw, ("name",), "used = 1")
            via, _ = self._fold(fw, ("name",), "via", k)
            if small:
                # The 'other' framework: every small one together.
                among = f"name IN ({', '.join('?' * len(small))})"
                names = sum(small, ())
                used.update({(OTHER,): n for n in self._count(
                    fw, (), f"{among} AND used = 1", names).values()})
                other_via, _ = self._fold(fw, (), "via", k, among, names)
                via = {b: n for b, n in via.items() if b[:1] not in small}
                via.update({(OTHER,) + b: n for b, n in other_via.items()})
            return {
                "hosts": hosts,
                "frameworks": {name: (n, used.get((name,), 0))
                               for (name,), n in frameworks.items()},
                "via": via,
                "versions": self._fold(fw, ("name",), "series", k)[0],
                "os": self._fold("hosts", (), "os_vendor || ' ' || "
                                 "os_release", k, live)[0],
                "pythons": self._fold("host_pythons", (), "python", k)[0],
                "virt": self._fold("hosts", (), "virt", k, live)[0],
                "age": self._fold("hosts", (), "age", k, live)[0],
            }

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
