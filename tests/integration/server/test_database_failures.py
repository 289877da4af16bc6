"""The database failing in the middle of a run: a full disk under SQLite,
PostgreSQL's connection ended (as a restart or a stop ends it) during
ingest and during expire.  Each ends in one line and exit status 75
(EX_TEMPFAIL, as the man page says), nothing half-stored, the spool as it
was for what was not stored, and the next run does the rest."""

import os
import re
import subprocess
import threading
import time
import uuid

import psycopg
import pytest

from pyweb_popcon.server.store import _suffix
from server_fixtures import Server, encryptor, make_report

DAY = 86_400


def one_line_75(done):
    assert done.returncode == os.EX_TEMPFAIL, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "the database failed" in line
    return line


def reports(srv, n):
    """`n` reports of hosts of their own in the spool: {name: host ID}."""
    hosts = [str(uuid.uuid4()) for _ in range(n)]
    sealed = encryptor().encrypt_many([make_report(h) for h in hosts])
    return {srv.drop(data): host for data, host in zip(sealed, hosts)}


def stored_hosts(srv):
    with srv.store() as store:
        return {h for h, in store.query("SELECT host_id FROM hosts")}


def complete(srv, hosts):
    """Every one of `hosts` stored whole: its framework and its Python."""
    with srv.store() as store:
        for host in hosts:
            assert store.query("SELECT COUNT(*) FROM host_frameworks "
                               "WHERE host_id = ?".replace(
                                   "?", store.dialect.p), (host,)) == [(1,)]
            assert store.query("SELECT COUNT(*) FROM host_pythons "
                               "WHERE host_id = ?".replace(
                                   "?", store.dialect.p), (host,)) == [(1,)]


def integrity(store):
    """SQLite's integrity_check, but for its false "NULL value in T.C":
    SQLite 3.40 (bookworm) says so of every WITHOUT ROWID table whose
    primary key has a column declared after others (3.46, trixie's, does
    not); a query for the NULLs shows whether there are any."""
    found = []
    for (line,) in store.query("PRAGMA integrity_check"):
        null = re.fullmatch(r"NULL value in (\w+)\.(\w+)", line)
        if null and store.query(f"SELECT COUNT(*) FROM {null[1]} WHERE "
                                f"{null[2]} IS NULL") == [(0,)]:
            continue
        found.append((line,))
    return found or [("ok",)]


@pytest.fixture
def small_fs(tmp_path):
    """A 2 MB file system (tmpfs), unmounted at the end."""
    where = tmp_path / "small"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755",
                    "tmpfs", str(where)], check=True)
    yield str(where)
    subprocess.run(["umount", "-l", str(where)], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs: needs root")
def test_sqlite_on_a_disk_that_fills_during_ingest(tmp_path, small_fs):
    srv = Server(tmp_path / "srv", "sqlite", min_hosts=1,
                 database=f"sqlite://{small_fs}/popcon.sqlite3")
    first = reports(srv, 3)
    assert srv.run("ingest").returncode == 0
    # All but a few pages of the file system taken.
    filler = os.path.join(small_fs, "filler")
    with open(filler, "wb") as f:
        free = os.statvfs(small_fs)
        f.write(b"\0" * (free.f_bavail * free.f_frsize - 3 * 4096))
    sent = reports(srv, 300)
    done = srv.run("ingest", check=False)
    one_line_75(done)      # SQLite says "disk I/O error", or "full"
    # (Room to look, as SQLite needs some to open the database at all.)
    os.unlink(filler)
    # What was stored is whole; what was not is still in the spool.
    stored = stored_hosts(srv)
    waiting = set(srv.incoming_files())
    assert waiting, "the disk filled after everything was stored"
    assert stored == set(first.values()) | {sent[n] for n in sent
                                            if n not in waiting}
    assert waiting <= set(sent)
    complete(srv, stored)
    with srv.store() as store:
        assert integrity(store) == [("ok",)]
    # The next run stores the rest.
    assert srv.run("ingest").returncode == 0
    assert srv.incoming_files() == []
    assert stored_hosts(srv) == set(first.values()) | set(sent.values())
    complete(srv, stored_hosts(srv))


def kill_when_waiting(holder):
    """End the connection of the run that waits for the lock `holder`
    holds, as PostgreSQL's stop or restart ends it; then let go of the
    lock.  In a thread: the run is the test's child process."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        # The holder's transaction would see its first look for ever.
        holder.execute("SELECT pg_stat_clear_snapshot()")
        rows = holder.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = "
            "current_database() AND wait_event_type = 'Lock' AND pid <> "
            "pg_backend_pid()").fetchall()
        if rows:
            for pid, in rows:
                holder.execute("SELECT pg_terminate_backend(%s)", (pid,))
            break
        time.sleep(0.05)
    holder.rollback()


def run_with_connection_ended(srv, command, table):
    """`command`, its connection ended while it waits, in its transaction,
    for `table`, which the test holds locked meanwhile."""
    holder = psycopg.connect(srv.database_url)
    holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    killer = threading.Thread(target=kill_when_waiting, args=(holder,))
    killer.start()
    try:
        return srv.run(*command, check=False)
    finally:
        killer.join()
        holder.close()


def test_postgresql_gone_during_ingest(tmp_path):
    srv = Server(tmp_path / "srv", "postgresql", min_hosts=1)
    first = reports(srv, 2)
    assert srv.run("ingest").returncode == 0
    sent = reports(srv, 20)
    with srv.store() as store:
        [(day,)] = store.query("SELECT MAX(day) FROM partitions")
    done = run_with_connection_ended(srv, ["ingest"], f"hosts_{_suffix(day)}")
    one_line_75(done)
    assert stored_hosts(srv) == set(first.values())
    assert set(srv.incoming_files()) == set(sent)
    assert srv.run("ingest").returncode == 0
    assert srv.incoming_files() == []
    assert stored_hosts(srv) == set(first.values()) | set(sent.values())
    complete(srv, stored_hosts(srv))


def test_postgresql_gone_during_expire(tmp_path):
    srv = Server(tmp_path / "srv", "postgresql", min_hosts=1)
    old = time.time() - 30 * DAY
    hosts = {}
    for received in (old, time.time()):
        host = str(uuid.uuid4())
        srv.drop(encryptor().encrypt(make_report(host)), received=received)
        hosts[received] = host
    assert srv.run("ingest").returncode == 0
    done = run_with_connection_ended(srv, ["expire"], "partitions")
    one_line_75(done)
    assert stored_hosts(srv) == set(hosts.values())     # none deleted
    assert srv.run("expire").stdout.startswith("1 hosts")
    assert stored_hosts(srv) == {hosts[max(hosts)]}
