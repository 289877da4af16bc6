"""The store on SQLite and on a real PostgreSQL: schema and its migration,
upsert, expiry."""

import dataclasses
import os
import random
import sqlite3
import threading
import time
import uuid

import pytest

from pyweb_popcon import report
from pyweb_popcon.server.admin import expire
from pyweb_popcon.server.publish import rule
from pyweb_popcon.server.store import counts, partitions, schema
from pyweb_popcon.server.store import MIGRATIONS, Store, _suffix, series
from server_fixtures import backend, database_url, dump  # noqa: F401

DAY = 86_400 * 10**9
HOUR_NS = 3600 * 10**9
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
                       f"WHERE host_id = {store.dialect.p}", (host,)) == [
        (host, 1, None, None)]
    # A report sent before the forget, ingested after it, stays forgotten.
    assert store.put([(NOW, "d", rep(host, ("sanic", "23.6.0")))]) == [
        "outdated"]
    assert rule.folded(store, 1)["hosts"] == 1


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
    # Just under, as the store tells: it keeps receive times to the hour.
    store.put([(NOW - 20 * DAY + HOUR_NS, "a",
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
        store._add_partition(NOW // DAY)
        p = store.dialect.p
        store._many(f"INSERT INTO hosts_{_suffix(NOW // DAY)} (host_id, "
                    "received, receipt, forgotten, os_vendor, os_release, "
                    f"virt, age) VALUES ({p}, {p}, {p}, 0, 'Debian', {p}, "
                    "'vm', '25+')",
                    [(h, NOW, h, f"r{i}") for i, h in enumerate(hosts)])
    counts = rule.folded(store, 5)
    assert counts["hosts"] == n
    assert counts["os"] == {("other",): n}


def tables(store):
    """The partitions' tables the database holds."""
    return sorted(name for name, in store.query(
        "SELECT name FROM sqlite_master WHERE type = 'table'" if store.sqlite
        else "SELECT tablename FROM pg_tables WHERE schemaname = "
        "current_schema()") if name.startswith("host") and name[-8:].isdigit())


def test_a_version_1_database_is_split_by_day_and_keeps_everything(
        tmp_path, backend, monkeypatch):  # noqa: F811
    """Schema 1 kept all hosts in one set of tables, keyed by host ID;
    schema 2 by hid; schema 3 in a partition per day received, with every
    row and count kept."""
    url = database_url(backend, str(tmp_path))
    hosts = [str(uuid.uuid4()) for _ in range(4)]
    monkeypatch.setattr(schema, "MIGRATIONS", MIGRATIONS[:1])
    with Store(url) as old:
        p = old.dialect.p
        with old.transaction():
            for i, host in enumerate(hosts):
                old.query("INSERT INTO hosts (host_id, received, receipt, "
                          "forgotten, os_vendor, os_release, virt, age) "
                          f"VALUES ({old.dialect.marks(4)}, 'Debian', '12', "
                          "'vm', '25+')",
                          (host, NOW - i * DAY, f"r{i}", int(i == 3)))
            old.query("INSERT INTO host_frameworks VALUES "
                      f"({p}, 'django', '4.2.11', '4.2', 'deb', 1, 1)",
                      (hosts[0],))
            old.query("INSERT INTO host_frameworks VALUES "
                      f"({p}, 'flask', '3.0.3', '3.0', 'pip', 2, NULL)",
                      (hosts[2],))
            old.query(f"INSERT INTO host_pythons VALUES ({p}, '3.11')",
                      (hosts[1],))
    monkeypatch.undo()
    with Store(url) as store:
        assert store.query("SELECT version FROM schema_version") == [
            (len(MIGRATIONS),)]
        db = dump(store)
        assert db["hosts"] == sorted(
            (h, NOW - i * DAY, f"r{i}", int(i == 3), None, None, None,
             "Debian", "12", None, "vm", "25+") for i, h in enumerate(hosts))
        assert db["partitions"] == sorted(
            (NOW // DAY - i, h, NOW // DAY - i) for i, h in enumerate(hosts))
        # Schema 4 added each entry's Python: unknown ('') for these.
        assert db["host_frameworks"] == sorted([
            (hosts[0], "django", "4.2.11", "4.2", "deb", 1, 1, ""),
            (hosts[2], "flask", "3.0.3", "3.0", "pip", 2, None, "")])
        assert db["host_pythons"] == [(hosts[1], "3.11")]
        assert tables(store) == sorted(
            f"{table}_{_suffix(NOW // DAY - i)}" for i in range(4)
            for table in ("hosts", "host_frameworks", "host_pythons"))
        # The tombstone is still a host: a newer report makes it new.
        assert store.put([(NOW + DAY, "s", rep(hosts[3], ("sanic",
                                                          "23.6.0")))]) == [
            "new"]
        assert rule.folded(store, 1)["frameworks"] == {
            "django": (1, 1), "flask": (1, 0), "sanic": (1, 1)}


def indexes(store):
    """The partitions' indexes of host_frameworks the database holds."""
    return sorted(name for name, in store.query(
        "SELECT name FROM sqlite_master WHERE type = 'index'" if store.sqlite
        else "SELECT indexname FROM pg_indexes WHERE schemaname = "
        "current_schema()") if name.startswith("host_frameworks_2"))


def test_a_version_3_database_gets_each_entrys_python(
        tmp_path, backend, monkeypatch):  # noqa: F811
    """Schema 5 adds host_frameworks.python to every partition ('' where
    unknown, as in format 1), in the primary key: two entries that differ
    only in their Python are both kept, and counted by it."""
    url = database_url(backend, str(tmp_path))
    old_host, new_host = str(uuid.uuid4()), str(uuid.uuid4())
    monkeypatch.setattr(schema, "MIGRATIONS", MIGRATIONS[:3])
    # Schema 3's partitions, as they were made.
    monkeypatch.setitem(partitions.COLUMNS, "host_frameworks",
                        partitions.COLUMNS["host_frameworks"][:7])
    monkeypatch.setitem(partitions.KEYS, "host_frameworks",
                        "host_id, name, version, via")
    monkeypatch.setitem(partitions.INDEXES, "host_frameworks", {
        "name": "name, host_id, used", "series": "name, series, host_id",
        "via": "name, via, host_id"})
    with Store(url) as old:
        with old.transaction():
            old._add_partition(NOW // DAY)
            name = _suffix(NOW // DAY)
            old.query(f"INSERT INTO hosts_{name} (host_id, received, "
                      "receipt, forgotten, format, os_vendor, os_release, "
                      f"virt, age) VALUES ({old.dialect.marks(3)}, 0, 1, "
                      "'Debian', '12', 'vm', '25+')", (old_host, NOW, "r"))
            old.query(f"INSERT INTO host_frameworks_{name} VALUES "
                      f"({old.dialect.p}, 'django', '4.2.11', '4.2', 'deb', "
                      "1, 1)", (old_host,))
    monkeypatch.undo()
    with Store(url) as store:
        assert store.query("SELECT version FROM schema_version") == [
            (len(MIGRATIONS),)]
        assert dump(store)["host_frameworks"] == [
            (old_host, "django", "4.2.11", "4.2", "deb", 1, 1, "")]
        assert indexes(store) == sorted(
            f"host_frameworks_{name}_{index}" for index in
            ("name", "series", "via", "python", "series_python")
            + (() if store.sqlite else ("pkey",)))
        entries = [report.Entry("django", "5.2.8", "venv", 1, True, python)
                   for python in ("3.12", "3.13")]
        store.put([(NOW + 1, "s", report.Report(
            host_id=new_host, date="2026-11-28", client="0.2.0",
            os=report.OS("Debian", "13", "amd64"), virt="vm", age="1",
            pythons=("3.13",), frameworks=tuple(entries)))])
        assert store.query("SELECT host_id, format FROM hosts ORDER BY "
                           "format") == [(old_host, 1), (new_host, 2)]
        assert sorted(store.query(
            "SELECT python FROM host_frameworks WHERE host_id = "
            f"{store.dialect.p}", (new_host,))) == [("3.12",), ("3.13",)]
        with store.counting() as count:
            assert count("frameworks") == {("django",): 2}
            assert count("covered") == {("django",): 1}
            assert count("framework_pythons") == {
                ("django", "3.12"): 1, ("django", "3.13"): 1}
            assert count("series_covered") == {("django", "5.2"): 1}
            assert count("series_pythons") == {
                ("django", "5.2", "3.12"): 1, ("django", "5.2", "3.13"): 1}


def test_expiry_drops_old_days_and_deletes_rows_of_the_cutoffs_day(store):
    """A backlog ingested late stores old reports after new ones; replaced
    and forgotten hosts move to the partition of their newest message.
    Partitions wholly before the cutoff go, rows of its own day before it
    go, and progress adds up to the hosts deleted."""
    rng = random.Random(7)
    hour = DAY // 24
    hosts = [str(uuid.uuid4()) for _ in range(60)]
    # NOW is 08:00 UTC: the cutoff, 20 days before, falls at 08:00 too,
    # between hosts 20 days and an hour old and 20 days less an hour old.
    ages = {h: rng.choice((0, 5, 19, 20, 21, 30)) * DAY
            + rng.choice((-1, 1)) * hour for h in hosts}
    order = hosts[:]
    rng.shuffle(order)
    for host in order:
        store.put([(NOW - ages[host], f"r{host}",
                    rep(host, ("django", "4.2.11"), ("flask", "3.0.3")))])
    # Reports that make old hosts new again, and forgets, old and new.
    renewed = [h for h in hosts if ages[h] > 20 * DAY][:3]
    forgotten_old = [h for h in hosts if ages[h] > 20 * DAY][3:5]
    forgotten_new = hosts[-2:]
    for host in renewed:
        store.put([(NOW, f"s{host}", rep(host, ("sanic", "23.6.0")))])
        ages[host] = 0
    for host in forgotten_old:
        store.put([(NOW - ages[host] + 1, f"t{host}", report.Forget(host))])
        ages[host] -= 1
    for host in forgotten_new:
        store.put([(NOW, f"t{host}", report.Forget(host))])
        ages[host] = 0
    old = {h for h in hosts if ages[h] > 20 * DAY}
    assert any(20 * DAY < ages[h] < 21 * DAY for h in old)
    assert any(19 * DAY < ages[h] < 20 * DAY for h in hosts)
    steps = []
    gone = store.expire(NOW - 20 * DAY + 1,
                        lambda n, total: steps.append((n, total)))
    assert gone == len(old - set(forgotten_old))      # tombstones uncounted
    total = steps[0][1]
    assert total == len(old) and steps[0][0] == 0
    assert sum(n for n, _ in steps) == total and len(steps) > 2
    db = dump(store)
    assert {r[0] for r in db["hosts"]} == set(hosts) - old
    # Each host in one partition, its newest message's day.
    assert sorted(h for _, h, _ in db["partitions"]) == sorted(
        set(hosts) - old)
    assert all(day == received for day, _, received in db["partitions"])
    assert {r[0] for r in db["host_frameworks"]} == \
        set(hosts) - old - set(forgotten_new)
    assert {r[0] for r in db["host_pythons"]} == \
        set(hosts) - old - set(forgotten_new)
    cutoff_day = (NOW - 20 * DAY) // DAY
    assert min(day for day, in store.query("SELECT day FROM partitions")) \
        == cutoff_day
    assert not [t for t in tables(store) if t[-8:] < _suffix(cutoff_day)]


def test_expiry_that_fails_half_way_deletes_nothing(store):
    for i in range(6):
        store.put([(NOW - (30 + i % 3) * DAY, f"r{i}",
                    rep(str(uuid.uuid4()), ("django", "4.2.11")))])
    before = dump(store)

    def fail_after_first_partition(n, total):
        if n:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        store.expire(NOW, fail_after_first_partition)
    assert dump(store) == before
    assert len(tables(store)) == 9
    assert store.expire(NOW) == 6          # and the next run does it all
    assert dump(store)["hosts"] == [] and tables(store) == []


def test_more_partitions_than_one_compound_select_takes(store):
    """SQLite takes at most 500 terms in a compound SELECT; the views and
    the lookup of a host nest them in groups of 100."""
    days = 130
    hosts = [str(uuid.uuid4()) for _ in range(days)]
    store.put([(NOW - i * DAY, f"r{i}", rep(h, ("django", "4.2.11")))
               for i, h in enumerate(hosts)])
    assert store.query("SELECT COUNT(*) FROM hosts") == [(days,)]
    # The oldest host, found in the last group, moves to today.
    assert store.put([(NOW + 1, "s", rep(hosts[-1], ("flask", "3.0.3")))]) \
        == ["replaced"]
    assert rule.folded(store, 1)["frameworks"] == {
        "django": (days - 1, days - 1), "flask": (1, 1)}
    assert len(dump(store)["partitions"]) == days


def test_counting_on_several_connections_reads_one_snapshot(
        store, monkeypatch):
    """On SQLite, partitions are counted by several connections at once;
    what they count adds up to the hosts put, and a report put meanwhile
    waits for counting's end: every count reads the same hosts."""
    if not store.sqlite:
        pytest.skip("one connection counts on PostgreSQL")
    monkeypatch.setattr(counts, "READERS", 3)
    rng = random.Random(3)
    names = ("django", "flask", "fastapi")
    hosts = {str(uuid.uuid4()): rng.sample(names, rng.randint(1, 3))
             for _ in range(40)}
    store.put([(NOW - rng.randrange(7) * DAY, f"r{i}",
                rep(h, *[(n, "1.0") for n in fws]))
               for i, (h, fws) in enumerate(hosts.items())])
    expected = {(n,): sum(n in fws for fws in hosts.values())
                for n in names}

    def put_late():
        with Store(store.url) as other:
            other.put([(NOW + DAY, "late",
                        rep(str(uuid.uuid4()), ("django", "1.0")))])

    late = threading.Thread(target=put_late)
    with store.counting() as count:
        assert count("frameworks") == expected
        late.start()
        time.sleep(0.5)     # time enough to commit, were it not waiting
        assert count("frameworks") == expected
        assert count("hosts") == {(): len(hosts)}
    late.join()
    with store.counting() as count:
        assert count("hosts") == {(): len(hosts) + 1}


def on_disk(path):
    """The bytes of the SQLite database at `path` and of its WAL, journal
    and shared-memory files, as they are now."""
    data = b""
    for name in (path, path + "-wal", path + "-journal", path + "-shm"):
        if os.path.exists(name):
            with open(name, "rb") as f:
                data += f.read()
    return data


def test_an_expired_host_is_overwritten_on_disk(tmp_path):
    """On SQLite, nothing of an expired host stays in the database file:
    dropped tables' pages are zeroed, not only put on the free list; nor
    in its WAL, though another connection is open (as aggregate's, status'
    or an administrator's sqlite3 may be), which keeps the WAL from being
    removed at close."""
    url = database_url("sqlite", str(tmp_path))
    host, kept = str(uuid.uuid4()), str(uuid.uuid4())
    # One in a partition dropped whole, one deleted from the partition the
    # cutoff falls in, one kept there.
    late, later = str(uuid.uuid4()), str(uuid.uuid4())
    with Store(url) as store:
        other = sqlite3.connect(store.path)
        store.put([(NOW - 30 * DAY, "a", rep(host, ("django", "4.2.11"))),
                   (NOW - 20 * DAY - 1, "c", rep(late, ("django", "4.2.11"))),
                   (NOW - 20 * DAY, "d", rep(later, ("django", "4.2.11"))),
                   (NOW, "b", rep(kept, ("flask", "3.0.3")))])
        assert other.execute("SELECT COUNT(*) FROM hosts").fetchall() == [
            (4,)]
        assert host.encode() in on_disk(store.path)
        assert store.expire(NOW - 20 * DAY) == 2
        found = on_disk(store.path)
    try:
        assert host.encode() not in found and kept.encode() in found
        assert late.encode() not in found and later.encode() in found
        assert other.execute("SELECT COUNT(*) FROM hosts").fetchall() == [
            (2,)]
    finally:
        other.close()


def pages(store):
    """Every page of every table and index of `store`'s PostgreSQL
    database, as the server holds it (pageinspect: free space included,
    which no query shows)."""
    store.query("CREATE EXTENSION IF NOT EXISTS pageinspect")
    data = b""
    for name, in store.query(
            "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace "
            "n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND "
            "c.relkind IN ('r', 'i')"):
        (count,), = store.query(f"SELECT pg_relation_size('{name}') / "
                                "current_setting('block_size')::int")
        for i in range(count):
            (page,), = store.query(f"SELECT get_raw_page('{name}', {i})")
            data += bytes(page)
    return data


def test_an_expired_host_leaves_no_bytes_in_postgresql():
    """On PostgreSQL a deleted row stays in its page, dead, and VACUUM
    leaves its bytes in the page's free space: nothing of an expired host
    is in any page of the database after expire."""
    late, later = str(uuid.uuid4()), str(uuid.uuid4())
    with Store(database_url("postgresql", None)) as store:
        store.put([(NOW - 20 * DAY - 1, "c", rep(late, ("django", "4.2.11"))),
                   (NOW - 20 * DAY, "d", rep(later, ("django", "4.2.11")))])
        assert late.encode() in pages(store)
        assert store.expire(NOW - 20 * DAY) == 1
        found = pages(store)
    assert late.encode() not in found and later.encode() in found


def test_a_literal_question_mark_and_percent_survive(store):
    """Placeholders come from the dialect, never from rewriting a
    statement's text: a ? in it stays a ?, and a % written the dialect's
    way stays a %, with parameters or without."""
    d = store.dialect
    assert store.query(f"SELECT '?', '50{d.percent}', {d.p}", ("?%",)) == [
        ("?", "50%", "?%")]
    assert store.query("SELECT CASE WHEN 'a?b' LIKE 'a_b' THEN 1 END, "
                       f"'{d.percent}?'") == [(1, "%?")]
    store.record_history("2026-11-28?", {"hosts": 1, "note": "50%?"})
    assert store.history() == [("2026-11-28?", {"hosts": 1, "note": "50%?"})]


def test_receive_times_are_kept_to_the_hour(store):
    store.put([(NOW + 59 * 60 * 10**9 + 123_456_789, "a",
                rep(str(uuid.uuid4()), ("django", "4.2.11")))])
    assert store.query("SELECT received FROM hosts") == [(NOW,)]


@pytest.mark.parametrize("order", [(0, 1), (1, 0)], ids=["in turn",
                                                         "reversed"])
def test_within_one_hour_forget_wins_then_the_later_date(store, order):
    """The clock keeps hours, so "later" within one needs no finer one:
    whatever order they are ingested in, a forget wins over a report of
    the same hour, and of two reports the later dated one."""
    host = str(uuid.uuid4())
    older = dataclasses.replace(rep(host, ("django", "3.2.25")),
                                date="2026-11-21")
    newer = rep(host, ("django", "4.2.11"))
    # Receipts ordered against the dates: the date decides, not the name.
    pairs = [(NOW + 10**9, "b", older), (NOW + 2 * 10**9, "a", newer)]
    for i in order:
        store.put([pairs[i]])
    assert store.query("SELECT version FROM host_frameworks") == [("4.2.11",)]
    forget = (NOW + 10**9, "0", report.Forget(host))
    late = (NOW + 3 * 10**9, "z", rep(host, ("flask", "3.0.3")))
    for message in ([forget, late] if order == (0, 1) else [late, forget]):
        store.put([message])
    assert store.live_hosts() == 0


def test_receive_times_of_before_are_cut_to_the_hour(tmp_path, backend,
                                                     monkeypatch):  # noqa: F811,E501
    url = database_url(backend, str(tmp_path))
    monkeypatch.setattr(schema, "MIGRATIONS", MIGRATIONS[:3])
    with Store(url) as old:
        with old.transaction():
            old._add_partition(NOW // DAY)
            old.query(f"INSERT INTO hosts_{_suffix(NOW // DAY)} (host_id, "
                      "received, receipt, forgotten) VALUES ("
                      f"{old.dialect.marks(4)})",
                      (str(uuid.uuid4()), NOW + 1234 * 10**9 + 5, "r", 0))
    monkeypatch.undo()
    with Store(url) as store:
        assert store.query("SELECT received FROM hosts") == [(NOW,)]
