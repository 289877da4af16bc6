"""Connecting to SQLite or PostgreSQL, transactions, and the dialect.

Statements are written once for both engines and built, never rewritten:
one takes its placeholders from the dialect (sqlite3 reads ?, psycopg
%s), and writes a literal percent sign as the dialect says (psycopg reads
% as the start of a placeholder).  A ? in a statement's text is a ? on
both engines.  Flags are INTEGER 0/1 so both engines count them alike.

Not SQLAlchemy Core: through it, ingest's put() took 2.4 times as long
(10,000 reports on SQLite: 2.0 s, not 0.85 s), 5-10% of all ingest on
2 cores and more on more (put() is serial, gpg is not); and bookworm's
SQLAlchemy (1.4) has no psycopg 3 driver.
"""

import contextlib
import logging
import os
import sqlite3
import time

from pyweb_popcon.server import ServerError


logger = logging.getLogger(__name__)

# Seconds expiry waits for SQLite readers of an older snapshot to end
# before it empties the WAL: a run of aggregate or status takes less.
READER_WAIT = 10


class StoreError(ServerError):
    """A database that cannot be opened or used."""


class Dialect:
    """How one engine spells what its driver or SQL differs in."""

    def __init__(self, name, p, percent, clustered):
        self.name = name
        self.p = p                      # a placeholder
        self.percent = percent          # a literal %
        # Where a table is kept in its primary key's order: SQLite is told
        # so (one B-tree fewer to update per row); PostgreSQL needs not be.
        self.clustered = clustered

    def marks(self, n):
        """`n` placeholders, comma separated: a row of VALUES."""
        return ", ".join([self.p] * n)


SQLITE = Dialect("sqlite", "?", "%", " WITHOUT ROWID")
POSTGRESQL = Dialect("postgresql", "%s", "%%", "")


class Engine:
    """A connection to the database named by a DATABASE_URL (and, for a
    PostgreSQL that asks for one, a password)."""

    def __init__(self, url, password=None):
        self.url = url
        if url.startswith("sqlite://"):
            self.sqlite, self.dialect = True, SQLITE
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
            self.sqlite, self.dialect = False, POSTGRESQL
            try:
                self.conn = psycopg.connect(
                    url, autocommit=True,
                    **({"password": password} if password else {}))
            except psycopg.Error as e:
                raise StoreError(f"cannot connect to PostgreSQL: {e}") from e

    def _wal(self):
        # Switching a new database to WAL needs it unlocked for a moment,
        # and the busy timeout does not cover that: wait here instead.
        deadline = time.monotonic() + 600
        while True:
            try:
                self.conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as e:
                # Only a lock passes: a full disk does not, waited for.
                if (not e.sqlite_errorname.startswith(("SQLITE_BUSY",
                                                       "SQLITE_LOCKED"))
                        or time.monotonic() > deadline):
                    raise
                time.sleep(0.05)

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

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

    def query(self, sql, params=()):
        """Run one statement; its rows, if it returns any.  The parameters
        are always passed, so that a % is read alike with or without."""
        cur = self.conn.execute(sql, tuple(params))
        return cur.fetchall() if cur.description else []

    def _many(self, sql, rows):
        self.conn.cursor().executemany(sql, rows)

    def leave_no_copy(self, tables):
        """After deleting what must leave no copy: rows deleted from
        `tables` (and tables dropped).

        SQLite zeroes what it deletes (secure_delete), but the WAL keeps
        every page written since the last checkpoint, and it is removed
        only when the last connection closes, which another one open (a
        run of aggregate, status, an administrator's sqlite3) can put off
        indefinitely: it is checkpointed into the database and truncated
        to nothing here, waiting up to READER_WAIT seconds for readers of
        an older snapshot (which still see what was deleted: for them it
        stays).  PostgreSQL only marks deleted rows dead, and
        VACUUM only makes their space reusable (the bytes stay in the
        pages): `tables`, one day's partition, are rewritten (VACUUM FULL),
        their old files deleted.  What neither engine can reach stays until
        overwritten: the file system's freed blocks, and PostgreSQL's WAL
        segments until recycled.
        """
        if self.sqlite:
            (patience,), = self.query("PRAGMA busy_timeout")
            self.query(f"PRAGMA busy_timeout = {READER_WAIT * 1000}")
            try:
                (busy, _, _), = self.query("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self.query(f"PRAGMA busy_timeout = {patience}")
            if busy:
                logger.warning(
                    "%s-wal still holds what was deleted: a reader whose "
                    "transaction began before it, and still sees it, was "
                    "there for %d s; the next expire empties it",
                    self.path, READER_WAIT)
            return
        for table in tables:
            self.query(f"VACUUM FULL {table}")

    @contextlib.contextmanager
    def transaction(self):
        if self.sqlite:
            # IMMEDIATE takes the write lock up front, so two writers
            # queue instead of failing on a lock upgrade.
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                # SQLite has rolled back already after some errors (a full
                # disk): a second ROLLBACK would hide the first error.
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
        else:
            with self.conn.transaction():
                yield
