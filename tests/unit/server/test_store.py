"""The store on SQLite and on a real PostgreSQL: schema, upsert, expiry."""

import uuid

import pytest

from pyweb_popcon import report
from pyweb_popcon.server import expire
from pyweb_popcon.server.store import MIGRATIONS, Store, series
from server_fixtures import backend, database_url  # noqa: F401

DAY = 86_400 * 10**9
NOW = 1_800_000_000 * 10**9


@pytest.fixture
def store(tmp_path, backend):  # noqa: F811
    with Store(database_url(backend, str(tmp_path))) as s:
        yield s


def rep(host, *frameworks, pythons=("3.11",)):
    return report.Report(
        host_id=host, date="2026-11-28", client="0.1.0",
        os=report.OS("Debian", "12", "amd64"), virt="vm", age="25+",
        pythons=pythons,
        frameworks=tuple(report.Entry(n, v, "deb", 1, True)
                         for n, v in frameworks))


def test_series():
    assert series("4.2.11") == "4.2"
    assert series("3") == "3.0"
    assert series("1!2.5rc1") == "2.5"


def test_schema_is_made_once_and_versioned(store):
    assert store.query("SELECT version FROM schema_version") == [
        (len(MIGRATIONS),)]
    store.put([(NOW, "a", rep(str(uuid.uuid4()), ("flask", "3.0.3")))])
    again = Store(store.url)          # migrate() on an up-to-date schema
    assert again.query("SELECT COUNT(*) FROM hosts") == [(1,)]
    again.close()


def test_newer_report_replaces_older_never_the_reverse(store):
    host = str(uuid.uuid4())
    old, new = rep(host, ("django", "3.2.25")), rep(host, ("django", "4.2.11"))
    assert store.put([(NOW, "b", new)]) == ["new"]
    assert store.put([(NOW - DAY, "a", old)]) == ["outdated"]
    assert store.query("SELECT version FROM host_frameworks") == [("4.2.11",)]
    assert store.put([(NOW + DAY, "c", old)]) == ["replaced"]
    assert store.query("SELECT version FROM host_frameworks") == [("3.2.25",)]


def test_same_time_is_decided_by_spool_name(store):
    host = str(uuid.uuid4())
    a, b = rep(host, ("flask", "2.2.5")), rep(host, ("flask", "3.0.3"))
    store.put([(NOW, "z", b), (NOW, "a", a)])
    assert store.query("SELECT version FROM host_frameworks") == [("3.0.3",)]
    assert store.put([(NOW, "z", b)]) == ["outdated"]   # idempotent


def test_forget_deletes_and_outlives_older_reports(store):
    host, other = str(uuid.uuid4()), str(uuid.uuid4())
    store.put([(NOW, "a", rep(host, ("django", "4.2.11"))),
               (NOW, "b", rep(other, ("flask", "3.0.3")))])
    assert store.put([(NOW + 1, "c", report.Forget(host))]) == ["forgotten"]
    assert store.query("SELECT host_id FROM host_frameworks") == [(other,)]
    assert store.query("SELECT host_id, forgotten, date, client FROM hosts "
                       "WHERE host_id = ?", (host,)) == [(host, 1, None, None)]
    # A report sent before the forget, ingested after it, stays forgotten.
    assert store.put([(NOW, "d", rep(host, ("sanic", "23.6.0")))]) == [
        "outdated"]
    assert store.counts(1)["hosts"] == 1


@pytest.mark.parametrize("age_days, kept", [(19, True), (20, False),
                                            (21, False)])
def test_expiry_at_19_20_21_days(store, tmp_path, age_days, kept):
    host, fresh = str(uuid.uuid4()), str(uuid.uuid4())
    store.put([(NOW - age_days * DAY, "a", rep(host, ("django", "4.2.11"))),
               (NOW, "b", rep(fresh, ("django", "4.2.11")))])
    hosts, _ = expire.run(store, str(tmp_path), 20, now_ns=NOW)
    assert hosts == (0 if kept else 1)
    remaining = {h for (h,) in store.query("SELECT host_id FROM hosts")}
    assert remaining == ({host, fresh} if kept else {fresh})
    frameworks = {h for (h,) in store.query(
        "SELECT host_id FROM host_frameworks")}
    assert frameworks == remaining


def test_expiry_just_under_20_days_keeps(store, tmp_path):
    store.put([(NOW - 20 * DAY + 10**9, "a",
                rep(str(uuid.uuid4()), ("django", "4.2.11")))])
    assert expire.run(store, str(tmp_path), 20, now_ns=NOW) == (0, 0)


def test_history_keeps_one_snapshot_per_day(store):
    store.record_history("2026-11-27", {"hosts": 3, "frameworks": []})
    store.record_history("2026-11-28", {"hosts": 4, "frameworks": []})
    store.record_history("2026-11-28", {"hosts": 5, "frameworks": []})
    assert [(d, s["hosts"]) for d, s in store.history()] == [
        ("2026-11-27", 3), ("2026-11-28", 5)]


def test_more_small_buckets_than_a_statement_takes_parameters(store):
    """Clients choose the OS release: 70,000 hosts each with its own must
    fold into one "other" (PostgreSQL takes at most 65,535 parameters)."""
    n = 70_000
    hosts = [str(uuid.UUID(int=i, version=4)) for i in range(n)]
    with store.transaction():
        store._many("INSERT INTO hosts (host_id, received, receipt, "
                    "forgotten, os_vendor, os_release, virt, age) "
                    "VALUES (?, ?, ?, 0, 'Debian', ?, 'vm', '25+')",
                    [(h, NOW, h, f"r{i}") for i, h in enumerate(hosts)])
    counts = store.counts(5)
    assert counts["hosts"] == n
    assert counts["os"] == {("other",): n}
