"""The database: run as pyweb-popcon-ingest (ingest, expire, aggregate,
status); touches DATABASE_URL only.  One schema and one set of SQL for
SQLite and PostgreSQL.

A Store is one connection, its jobs each in a module of this package:
engine (connecting, transactions, what the two engines spell
differently), schema (the migrations), partitions (hosts by day, views,
expiry), hosts (each host's newest message, looked up under a lock),
counts (hosts per bucket) and history (the published snapshots).
Counts are made per partition and added up: exact, as no host is in two.
"""

from pyweb_popcon.server.store.counts import BUCKETS, Counts
from pyweb_popcon.server.store.engine import Engine, StoreError
from pyweb_popcon.server.store.history import History
from pyweb_popcon.server.store.hosts import Hosts, series
from pyweb_popcon.server.store.partitions import (
    COLUMNS, DAY_NS, Partitions, _suffix)
from pyweb_popcon.server.store.schema import MIGRATIONS, Schema

__all__ = ["BUCKETS", "COLUMNS", "DAY_NS", "MIGRATIONS", "Store",
           "StoreError", "_suffix", "series"]


class Store(Engine, Schema, Partitions, Hosts, Counts, History):
    """A connection to the database named by a DATABASE_URL (and, for a
    PostgreSQL that asks for one, a password), its schema up to date."""

    def __init__(self, url, password=None):
        super().__init__(url, password)
        self.migrate()
