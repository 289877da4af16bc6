"""The schema and its migrations, one after another, once each."""

from pyweb_popcon.server.clock import HOUR_NS
from pyweb_popcon.server.store.engine import StoreError
from pyweb_popcon.server.store.partitions import (
    DAY_NS, INDEXES, _suffix)

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
    (
        # Receive times to the hour (see clock.py), as they are kept now.
        lambda store: _to_the_hour(store),
    ),
    (
        # Format 2: each framework entry's Python, '' where unknown (all of
        # format 1's), in the primary key, as entries may differ only in it.
        lambda store: _python_in_frameworks(store),
    ),
)

# host_frameworks' columns before schema 5.
FRAMEWORK_COLUMNS_3 = "host_id, name, version, series, via, envs, used"


def _to_the_hour(store):
    """Migration 4: every receive time kept cut to its hour."""
    for day in store._days():
        # Integer division on both engines (no "%": psycopg's placeholder).
        store.query(f"UPDATE hosts_{_suffix(day)} SET received = received / "
                    f"{HOUR_NS} * {HOUR_NS}")


def _split_by_day(store):
    """Migration 3: schema 2's hosts into one partition per day."""
    p = store.dialect.p
    in_day = f"h.received >= {p} AND h.received < {p}"
    for day, in store.query(f"SELECT DISTINCT received / {DAY_NS} "
                            "FROM hosts_v2"):
        store._add_partition(day)
        span, name = (day * DAY_NS, (day + 1) * DAY_NS), _suffix(day)
        store.query(f"INSERT INTO hosts_{name} SELECT host_id, received, "
                    "receipt, forgotten, date, format, client, os_vendor, "
                    "os_release, os_arch, virt, age FROM hosts_v2 h WHERE "
                    f"{in_day}", span)
        store.query(f"INSERT INTO host_frameworks_{name} "
                    f"({FRAMEWORK_COLUMNS_3}) SELECT h.host_id, "
                    "f.name, f.version, f.series, f.via, f.envs, f.used "
                    "FROM host_frameworks_v2 f JOIN hosts_v2 h USING (hid) "
                    f"WHERE {in_day}", span)
        store.query(f"INSERT INTO host_pythons_{name} SELECT h.host_id, "
                    "p.python FROM host_pythons_v2 p JOIN hosts_v2 h "
                    f"USING (hid) WHERE {in_day}", span)
    store._views()


def _python_in_frameworks(store):
    """Migration 5: each partition's host_frameworks made again with the
    column python and the primary key that includes it."""
    store.query("DROP VIEW IF EXISTS host_frameworks")
    for day in store._days():
        name = _suffix(day)
        # Index names are the schema's, not the table's: free them first.
        for index in INDEXES["host_frameworks"]:
            store.query(f"DROP INDEX IF EXISTS host_frameworks_{name}_{index}")
        store.query(f"ALTER TABLE host_frameworks_{name} RENAME TO "
                    f"host_frameworks_{name}_v3")
        if not store.sqlite:
            # So is PostgreSQL's primary key's: the new table takes it.
            store.query(f"ALTER TABLE host_frameworks_{name}_v3 RENAME "
                        f"CONSTRAINT host_frameworks_{name}_pkey TO "
                        f"host_frameworks_{name}_v3_pkey")
        store._make_table("host_frameworks", name)
        store.query(f"INSERT INTO host_frameworks_{name} ("
                    f"{FRAMEWORK_COLUMNS_3}) SELECT {FRAMEWORK_COLUMNS_3} "
                    f"FROM host_frameworks_{name}_v3")
        store.query(f"DROP TABLE host_frameworks_{name}_v3")
    store._views()


class Schema:
    """Migrating a Store's database to the newest schema."""

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
                    for statements in MIGRATIONS[version:]:
                        for statement in statements:
                            if isinstance(statement, dict):
                                statement = statement.get(self.dialect.name)
                            if callable(statement):
                                statement(self)
                            elif statement:
                                self.query(statement.format(
                                    clustered=self.dialect.clustered))
                    self.query("UPDATE schema_version SET version = "
                               f"{self.dialect.p} WHERE id = 1",
                               (len(MIGRATIONS),))
                return
            except StoreError:
                raise
            except Exception:
                # Two first starts on one PostgreSQL can collide creating
                # schema_version; the loser tries again and finds it made.
                if attempt == 4:
                    raise
