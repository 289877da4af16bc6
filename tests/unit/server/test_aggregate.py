"""Aggregation in the store, small-count folding, and every output file."""

import datetime
import json
import os
import re
import uuid

import pytest

from populations import published_numbers
from pyweb_popcon import report
from pyweb_popcon.server.publish import aggregate, rule
from pyweb_popcon.server.store import Store
from server_fixtures import backend, database_url  # noqa: F401

NOW = 1_800_000_000 * 10**9
K = 5


@pytest.fixture
def store(tmp_path, backend):  # noqa: F811
    with Store(database_url(backend, str(tmp_path))) as s:
        yield s


def add(store, n, frameworks, pythons=("3.11",), virt="none", vendor="Debian",
        release="12", age="25+"):
    msgs = []
    for i in range(n):
        msgs.append((NOW, f"r{uuid.uuid4().hex}", report.Report(
            host_id=str(uuid.uuid4()), date="2026-11-28", client="0.1.0",
            os=report.OS(vendor, release, "amd64"), virt=virt, age=age,
            pythons=tuple(pythons),
            frameworks=tuple(report.Entry(name, version, via, 1, used)
                             for name, version, via, used in frameworks))))
    store.put(msgs)


def populate(store):
    # 20 hosts with Django 4.2 (deb) and Flask 3.0 (venv), used.
    add(store, 20, [("django", "4.2.11", "deb", True),
                    ("flask", "3.0.3", "venv", True)])
    # 6 hosts with Django 3.2 from pip plus a venv copy, unused.
    add(store, 6, [("django", "3.2.25", "pip", False),
                   ("django", "3.2.25", "venv", False)], pythons=("3.9",))
    # 3 hosts with Django 5.0: a small version bucket.
    add(store, 3, [("django", "5.0.6", "pip", None)], virt="container",
        vendor="Ubuntu", release="24.04")
    # 2 hosts with Sanic and 2 with Bottle: small frameworks, 4 hosts
    # together -> "other" is itself too small to show.
    add(store, 2, [("sanic", "23.6.0", "venv", True)], pythons=("3.12",))
    add(store, 2, [("bottle", "0.12.25", "deb", True)], pythons=("3.12",))
    # 3 hosts with Falcon *and* Tornado: one host counts once in "other".
    add(store, 3, [("falcon", "3.1.3", "pip", True),
                   ("tornado", "6.2", "deb", True)], pythons=("3.12",))


def test_stats_json_shape_and_folding(store):
    populate(store)
    stats = rule.statistics(rule.folded(store, K), K, "2026-11-28")
    assert stats["generated"] == "2026-11-28"
    assert stats["hosts"] == 36
    assert stats["min_hosts"] == K
    assert stats["noise_epsilon"] is None
    names = [f["name"] for f in stats["frameworks"]]
    assert names == ["django", "flask", "other"]
    django, flask, other = stats["frameworks"]
    # A host counts once per framework, whatever versions and ways.
    assert django == {
        "name": "django", "hosts": 29, "used": 20,
        "via": {"deb": 20, "pip": 9, "venv": 6},
        # 5.0 (3 hosts) is folded, too small; 3.2 (6) is withheld too,
        # or 29 - 20 - 6 would count the 3 hosts of 5.0.
        "versions": [{"version": "4.2", "hosts": 20}]}
    assert flask == {"name": "flask", "hosts": 20, "used": 20,
                     "via": {"venv": 20}, "versions": [
                         {"version": "3.0", "hosts": 20}]}
    # sanic 2 + bottle 2 + falcon/tornado 3 distinct hosts = 7, not 10.
    assert other["hosts"] == 7 and other["used"] == 7
    # deb: bottle 2 + tornado 3 = 5 and the other ways (falcon's pip 3,
    # sanic's venv 2) 5: each leaves 2 of the 7 hosts beside it, and
    # together they say 3 hosts have both.  Both are withheld.
    assert other["via"] == {}
    assert other["versions"] == []
    # Debian 12: 33 of 36 would say 3 hosts run something else; folding it
    # into "other" leaves nothing to show.  Likewise virtualisation.
    assert stats["os"] == []
    assert stats["pythons"] == [{"version": "3.11", "hosts": 23},
                                {"version": "3.12", "hosts": 7},
                                {"version": "3.9", "hosts": 6}]
    assert stats["virt"] == {}
    assert stats["age"] == {"25+": 36}


def test_no_published_number_is_below_min_hosts(store, tmp_path):
    populate(store)
    stats = aggregate.run(store, str(tmp_path / "www"), K,
                          datetime.date(2026, 11, 28))
    counts = published_numbers(stats)
    assert counts and min(counts) >= K
    text = (tmp_path / "www" / "by_inst.txt").read_text()
    assert "sanic" not in text and "bottle" not in text
    assert "5.0" not in (tmp_path / "www" / "by_version.txt").read_text()
    html = (tmp_path / "www" / "index.html").read_text()
    assert "Sanic" not in html and "Bottle" not in html


def test_outputs_written(store, tmp_path):
    populate(store)
    out = tmp_path / "www"
    aggregate.run(store, str(out), K, datetime.date(2026, 11, 27))
    aggregate.run(store, str(out), K, datetime.date(2026, 11, 28))
    stats = json.loads((out / "stats.json").read_text())
    assert stats["generated"] == "2026-11-28"
    inst = (out / "by_inst.txt").read_text().splitlines()
    rows = [line.split() for line in inst if not line.startswith("#")]
    assert rows[0][:7] == ["1", "django", "29", "20", "20", "9", "6"]
    assert rows[1][:7] == ["2", "flask", "20", "20", "-", "-", "20"]
    assert rows[2][:3] == ["3", "other", "7"]
    assert rows[-1] == ["Total", "36"]
    versions = [line.split() for line in
                (out / "by_version.txt").read_text().splitlines()
                if not line.startswith("#")]
    assert versions == [["1", "django", "4.2", "20"],
                        ["2", "flask", "3.0", "20"]]
    html = (out / "index.html").read_text()
    for chart in ("frameworks.svg", "versions.svg", "via.svg",
                  "history.svg"):
        assert f'src="{chart}"' in html
        assert (out / chart).read_bytes().lstrip().startswith(b"<?xml")
    assert [d for d, _ in store.history()] == ["2026-11-27", "2026-11-28"]
    assert not [n for n in os.listdir(out) if n.startswith(".")]


def test_under_min_hosts_publishes_no_figure(store, tmp_path):
    """Not even the total: an empty database, and one with K - 1 hosts."""
    for day, hosts in ((27, 0), (28, K - 1)):
        add(store, hosts - len(store.query("SELECT host_id FROM hosts")),
            [("django", "4.2.11", "deb", True)])
        stats = aggregate.run(store, str(tmp_path / "www"), K,
                              datetime.date(2026, 11, day))
        assert stats["hosts"] is None and stats["frameworks"] == []
        assert stats["os"] == stats["pythons"] == []
        assert stats["virt"] == stats["age"] == {}
        assert re.search(r"Total\s+-", (tmp_path / "www" / "by_inst.txt")
                         .read_text())
    assert store.history() == []


@pytest.mark.parametrize("epsilon", ["", "1"], ids=["exact", "noised"])
def test_made_up_os_names_are_counted_as_other_never_shown(store, tmp_path,
                                                           epsilon):
    """Enough forged hosts can inflate counts, but not choose the text:
    an OS the project does not list is published as "other" only."""
    populate(store)
    add(store, 40, [("django", "4.2.11", "deb", True)], vendor="secretcorp",
        release="2026-02-30")
    out = tmp_path / "www"
    stats = aggregate.run(store, str(out), K, datetime.date(2026, 11, 28),
                          epsilon=epsilon)
    shown = {e["name"]: e["hosts"] for e in stats["os"]}
    assert "secretcorp 2026-02-30" not in shown
    if not epsilon:
        assert shown["other"] == 40 + 3 and shown["Debian 12"] == 33
    for path in out.rglob("*"):
        if path.is_file():
            assert b"secretcorp" not in path.read_bytes(), path


def test_a_mixed_store_says_what_its_pythons_cover(store, tmp_path):
    """Old clients (report format 1) name no Python per framework: until
    they expire, the tables by Python cover the format-2 hosts only, and
    say how many."""
    def reports(n, format, entries):
        return [(NOW, f"r{uuid.uuid4().hex}", report.Report(
            host_id=str(uuid.uuid4()), date="2026-11-28", client="0.1.0",
            os=report.OS("Debian", "12", "amd64"), virt="vm", age="25+",
            pythons=("3.11",), format=format,
            frameworks=tuple(report.Entry(*e) for e in entries)))
            for _ in range(n)]
    store.put(reports(12, 1, [("django", "4.2.11", "deb", 1, True)])
              + reports(20, 2, [("django", "4.2.11", "deb", 1, True,
                                 "3.11"),
                                ("django", "5.2.8", "venv", 1, True,
                                 "3.12")])
              + reports(10, 2, [("django", "5.2.8", "venv", 1, True,
                                 "3.13")]))
    out = tmp_path / "www"
    stats = aggregate.run(store, str(out), K, datetime.date(2026, 11, 28))
    django, = stats["frameworks"]
    assert django["hosts"] == 42
    assert stats["framework_pythons"] == [{
        "name": "django", "covered": 30,
        "pythons": [{"version": "3.11", "hosts": 20},
                    {"version": "3.12", "hosts": 20},
                    {"version": "3.13", "hosts": 10}],
        "versions": [
            {"version": "5.2", "covered": 30,
             "pythons": [{"version": "3.12", "hosts": 20},
                         {"version": "3.13", "hosts": 10}]},
            {"version": "4.2", "covered": 20,
             "pythons": [{"version": "3.11", "hosts": 20}]}]}]
    csv = (out / "history.csv").read_text().splitlines()
    assert "2026-11-28,covered,django,,30" in csv
    assert "2026-11-28,series_pythons,django,5.2/3.13,10" in csv
    assert json.loads((out / "stats.json").read_text()) == stats
