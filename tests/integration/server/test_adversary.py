"""What aggregate publishes by the publication rule (publish/rule.py),
against an adversary: no count of 1 to MIN_HOSTS-1 hosts follows from
adding and subtracting published numbers.

The adversary reads stats.json and the text tables (by_inst.txt,
by_version.txt) and knows what the report format makes of the numbers:
each host is in exactly one OS, virtualisation and age bucket (a partition
of the total), while the frameworks, the Python versions, a framework's
ways of install, its versions and its "used" hosts are sets of hosts
inside a container (the total; the framework's hosts) that may overlap.
For every table it tries every sum and difference (each number taken -1, 0
or +1 times) of the table's figures, its containers and the total.  Such a
combination is a derivation when, whichever hosts stand behind the
numbers, it counts every host 0 or 1 times: its value is then the number of
hosts in some set.  The adversary checks that against every kind of host
the table allows (its "patterns"), assuming, to be strict, that every host
of a container is in one of the figures shown (unless they add up to
fewer hosts).  A derivation of 1 to k-1 is
a finding.  So is the container minus the sum of everything shown (the
remainder a reader would compute), which is a derivation only when no host
is in two figures (exactly so in a partition; in the other tables
publication keeps it safe anyway).

The populations go through a real store, SQLite and PostgreSQL: random ones
(hypothesis, built from a few kinds of host in large and small numbers, the
shape that makes a remainder small) and crafted ones, among them the
issue's: 36 hosts with "Debian 12: 33" and "virt none: 33".  The last tests
show the adversary catching the old publication and the rule with any one
of its checks taken out.
"""

import collections
import datetime
import itertools
import json
import re
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyweb_popcon import report
from pyweb_popcon.server.publish import aggregate, rule
from pyweb_popcon.server.published import OTHER
from pyweb_popcon.server.store import Store, series
from populations import host, hosts_of, store_population
from server_fixtures import backend, database_url  # noqa: F401

K = 5
# by_inst.txt's columns of ways of installing.
VIA_COLUMNS = report.VIAS + (OTHER,)


# -- the adversary ---------------------------------------------------------------

@dataclass
class Table:
    name: str
    figures: dict           # label -> hosts, as shown
    containers: tuple       # innermost first: (framework's hosts, total) or (total,)
    partition: bool = False


def _combinations(n):
    grid = np.array(list(itertools.product((-1, 0, 1), repeat=n)),
                    dtype=np.int64)
    return grid[np.any(grid != 0, axis=1)]


COMBINATIONS = {n: _combinations(n) for n in range(1, 11)}


def patterns(table):
    """Each kind of host as the table's numbers see it: 1 where the host
    counts in the number, in the order containers, then figures."""
    m, inner = len(table.figures), len(table.containers)
    rows = []
    if table.partition:
        rows += [[1] + [int(i == j) for j in range(m)] for i in range(m)]
        if sum(table.figures.values()) < table.containers[0]:
            rows.append([1] + [0] * m)      # in a bucket not shown
        return np.array(rows, dtype=np.int64)
    for i in range(1, inner):               # in outer containers only
        rows.append([0] * i + [1] * (inner - i) + [0] * m)
    # In a container, in no figure: only where the figures cannot cover
    # the container (then what assumed they do would be no derivation).
    cover = m and sum(table.figures.values()) >= table.containers[0]
    rows += [[1] * inner + list(p) for p in itertools.product((0, 1),
                                                              repeat=m)
             if any(p) or not cover]
    return np.array(rows, dtype=np.int64)


def findings(table, k):
    """What the adversary learns from one table: ["+a -b = n", ...]."""
    labels = ([f"container{i}" for i in range(len(table.containers))]
              + [f"{table.name}[{b}]" for b in table.figures])
    values = np.array(list(table.containers) + list(table.figures.values()),
                      dtype=np.int64)
    assert len(values) <= 10, f"{table.name}: too many figures to try all"
    combos = COMBINATIONS[len(values)]
    counted = combos @ patterns(table).T
    exact = np.all((counted == 0) | (counted == 1), axis=1)
    sums = combos @ values
    found = [" ".join(f"{'+' if c > 0 else '-'}{label}"
                      for c, label in zip(row, labels) if c)
             + f" = {n}" for row, n in zip(combos[exact & (sums >= 1)
                                                  & (sums < k)],
                                          sums[exact & (sums >= 1)
                                               & (sums < k)])]
    rest = table.containers[0] - sum(table.figures.values())
    if table.figures and 0 < rest < k:
        found.append(f"{table.name}: container minus all shown = {rest}")
    return found


def tables_of(stats):
    """The tables stats.json publishes."""
    total = stats["hosts"]
    if total is None:
        return []
    top = (total,)
    tables = [Table("frameworks", {f["name"]: f["hosts"]
                                   for f in stats["frameworks"]}, top),
              Table("os", {o["name"]: o["hosts"] for o in stats["os"]}, top,
                    True),
              Table("pythons", {p["version"]: p["hosts"]
                                for p in stats["pythons"]}, top),
              Table("virt", dict(stats["virt"]), top, True),
              Table("age", dict(stats["age"]), top, True)]
    for f in stats["frameworks"]:
        inside = (f["hosts"], total)
        used = {} if f["used"] is None else {"used": f["used"]}
        tables += [Table(f"{f['name']}.used", used, inside),
                   Table(f"{f['name']}.via", dict(f["via"]), inside),
                   Table(f"{f['name']}.versions",
                         {v["version"]: v["hosts"] for v in f["versions"]},
                         inside)]
    return tables + [t for fp in stats.get("framework_pythons", ())
                     for t in python_tables(stats, fp)]


def by_label(entries):
    return {e["version"]: e["hosts"] for e in entries}


def python_tables(stats, fp):
    """One framework's tables by Python, each on its own: its covered
    hosts, its hosts per Python, its series' covered hosts, and the
    cross-table's rows and columns, each within its containers."""
    name, total = fp["name"], stats["hosts"]
    hosts = next(f["hosts"] for f in stats["frameworks"] if f["name"] == name)
    series = by_label(next(f["versions"] for f in stats["frameworks"]
                           if f["name"] == name))
    pythons = by_label(fp["pythons"])
    within = (fp["covered"], hosts, total)
    tables = [Table(f"{name}.covered", {"covered": fp["covered"]},
                    (hosts, total)),
              Table(f"{name}.pythons", pythons, within),
              Table(f"{name}.series_covered",
                    {v["version"]: v["covered"] for v in fp["versions"]},
                    within)]
    columns = collections.defaultdict(dict)
    for v in fp["versions"]:
        row = by_label(v["pythons"])
        tables.append(Table(f"{name}.{v['version']}.pythons", row,
                            (v["covered"], series[v["version"]], hosts,
                             total)))
        for p, n in row.items():
            if p != OTHER:
                columns[p][v["version"]] = n
    tables += [Table(f"{name}.python {p}.series", row,
                     (pythons[p],) + within) for p, row in columns.items()]
    return tables


def joint_findings(stats, fp, k):
    """What the adversary learns from one framework's tables by Python
    together with its hosts, its versions, its covered counts and the
    Pythons of all hosts: a combination of them all (each -1, 0 or +1
    times) that counts every kind of host 0 or 1 times and adds up to 1
    to k-1, found by integer programming (scipy's HiGHS).

    Kinds of host: up to two entries of the framework, each of a series
    shown or another, under a Python shown, another or none named; and
    any of the Pythons of all hosts (the machine's system-wide Pythons: a
    venv's own need not be among them).  Fewer kinds than the format
    allows make more combinations count as exact, so the adversary is
    stricter, never weaker.  "other" figures are left to the tables on
    their own.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp
    name, total = fp["name"], stats["hosts"]
    f = next(f for f in stats["frameworks"] if f["name"] == name)
    series = {s: n for s, n in by_label(f["versions"]).items() if s != OTHER}
    pythons = {p: n for p, n in by_label(fp["pythons"]).items()
               if p != OTHER}
    everyone = {p: n for p, n in by_label(stats["pythons"]).items()
                if p in pythons}
    rows = {v["version"]: v["covered"] for v in fp["versions"]}
    cells = {(v["version"], p): n for v in fp["versions"]
             for p, n in by_label(v["pythons"]).items() if p != OTHER}
    # number: (label, value, whether a host with entries E and the
    # Pythons `listed` counts in it)
    numbers = [
        ("total", total, lambda E, listed: True),
        (f"{name}", f["hosts"], lambda E, listed: bool(E)),
        (f"{name}.covered", fp["covered"],
         lambda E, listed: any(p for _, p in E))]
    numbers += [(f"{name}.versions[{s}]", n,
                 lambda E, listed, s=s: any(t == s for t, _ in E))
                for s, n in series.items()]
    numbers += [(f"{name}.series_covered[{s}]", n,
                 lambda E, listed, s=s: any(t == s and p for t, p in E))
                for s, n in rows.items()]
    numbers += [(f"{name}.pythons[{p}]", n,
                 lambda E, listed, p=p: any(q == p for _, q in E))
                for p, n in pythons.items()]
    numbers += [(f"{name}.{s}.pythons[{p}]", n,
                 lambda E, listed, c=(s, p): c in E)
                for (s, p), n in cells.items()]
    numbers += [(f"pythons[{p}]", n, lambda E, listed, p=p: p in listed)
                for p, n in everyone.items()]
    kinds = [(s, p) for s in list(series) + ["another"]
             for p in list(pythons) + ["another", None]]
    entries = [()] + [(e,) for e in kinds] + list(
        itertools.combinations(kinds, 2))
    patterns = set()
    for E in entries:
        for listed in itertools.product((0, 1), repeat=len(everyone)):
            listed = {p for p, x in zip(everyone, listed) if x}
            patterns.add(tuple(int(bool(test(E, listed)))
                               for _, _, test in numbers))
    A = np.array(sorted(patterns))
    values = np.array([v for _, v, _ in numbers])
    # Without presolve: bookworm's HiGHS (scipy 1.10) presolves some of
    # these to a fractional "solution".
    found = milp(np.zeros(len(numbers)),
                 integrality=np.ones(len(numbers), dtype=int),
                 bounds=Bounds(-1, 1),
                 constraints=[LinearConstraint(A, 0, 1),
                              LinearConstraint(values, 1, k - 1)],
                 options={"presolve": False})
    if found.x is None:
        return []
    c = np.round(found.x).astype(int)
    assert np.allclose(found.x, c) and 1 <= c @ values < k
    assert np.all((A @ c >= 0) & (A @ c <= 1))
    return [" ".join(f"{'+' if x > 0 else '-'}{label}"
                     for x, (label, _, _) in zip(c, numbers) if x)
            + f" = {int(c @ values)}"]


def _rows(text):
    return [line.split() for line in text.splitlines()
            if line.strip() and not line.startswith("#")]


def tables_of_text(by_inst, by_version):
    """The tables the text files publish, read as a reader would."""
    def figure(text):
        return None if text == "-" else int(text)
    rows = _rows(by_inst)
    total = figure(rows[-1][1])
    assert rows[-1][0] == "Total"
    if total is None:
        assert rows[:-1] == [] and _rows(by_version) == []
        return []
    frameworks = {r[1]: [figure(x) for x in r[2:4 + len(VIA_COLUMNS)]]
                  for r in rows[:-1]}
    versions = collections.defaultdict(dict)
    for _, name, version, hosts in _rows(by_version):
        versions[name][version] = int(hosts)
    top = (total,)
    tables = [Table("text.frameworks",
                    {n: f[0] for n, f in frameworks.items()}, top)]
    for name, (hosts, used, *via) in frameworks.items():
        inside = (hosts, total)
        tables += [
            Table(f"text.{name}.used",
                  {} if used is None else {"used": used}, inside),
            Table(f"text.{name}.via", {w: n for w, n in zip(VIA_COLUMNS,
                                                            via)
                                       if n is not None}, inside),
            Table(f"text.{name}.versions", versions.pop(name, {}), inside)]
    assert not versions, f"versions of frameworks not listed: {versions}"
    return tables


def adversary(stats, by_inst, by_version, k):
    """Every small count the three published files give away."""
    found = []
    for table in tables_of(stats) + tables_of_text(by_inst, by_version):
        found += findings(table, k)
    for fp in stats.get("framework_pythons", ()):
        found += joint_findings(stats, fp, k)
    return found


# -- populations ----------------------------------------------------------------

def published(store, k, epsilon=""):
    """stats.json, by_inst.txt and by_version.txt as aggregate writes them
    (run() without the charts, which are drawn from stats.json alone)."""
    stats = json.loads(json.dumps(rule.publication(
        store, k, "2026-11-28", epsilon)))
    return stats, aggregate.by_inst(stats), aggregate.by_version(stats)


def truth(population, k):
    """The exact counts behind every figure stats.json may show, "other"
    included (the rule folds buckets under k into it)."""
    hosts = hosts_of(population)
    sets = collections.defaultdict(set)
    for i, h in enumerate(hosts):
        sets["os", f"{h['os'][0]} {h['os'][1]}"].add(i)
        sets["virt", h["virt"]].add(i)
        sets["age", h["age"]].add(i)
        for p in h["pythons"]:
            sets["pythons", p].add(i)
        for name, version, via, used, *python in h["frameworks"]:
            sets["fw", name].add(i)
            sets["via", name, via].add(i)
            sets["versions", name, series(version)].add(i)
            if used:
                sets["used", name].add(i)
            if python and python[0]:
                sets["covered", name].add(i)
                sets["fpy", name, python[0]].add(i)
                sets["scov", name, series(version)].add(i)
                sets["spy", name, series(version), python[0]].add(i)

    def other(prefix):
        """Hosts of the buckets under k among those keyed prefix + (b,)."""
        small = [s for key, s in sets.items()
                 if key[:len(prefix)] == prefix and len(key) == len(prefix) + 1
                 and len(s) < k]
        return set().union(*small)

    out = collections.Counter({key: len(s) for key, s in sets.items()})
    small_fw = [key[1] for key, s in sets.items()
                if key[0] == "fw" and len(s) < k]
    out["fw", OTHER] = len(other(("fw",)))
    out["used", OTHER] = len(set().union(*[sets["used", n]
                                           for n in small_fw]))
    by_via = collections.defaultdict(set)
    for name in small_fw:
        for via in report.VIAS:
            by_via[via] |= sets["via", name, via]
    for via, s in by_via.items():
        out["via", OTHER, via] = len(s)
    out["via", OTHER, OTHER] = len(set().union(
        *[s for s in by_via.values() if len(s) < k]))
    for name in {key[1] for key in sets if key[0] == "fw"}:
        out["via", name, OTHER] = len(other(("via", name)))
        out["versions", name, OTHER] = len(other(("versions", name)))
    out["pythons", OTHER] = len(other(("pythons",)))
    return len(hosts), out


def check_exact(stats, population, k):
    """Every figure shown is the true count (no noise)."""
    total, counts = truth(population, k)
    assert stats["hosts"] == (total if total >= k else None)
    for f in stats["frameworks"]:
        assert f["hosts"] == counts["fw", f["name"]], f
        if f["used"] is not None:
            assert f["used"] == counts["used", f["name"]], f
        for via, n in f["via"].items():
            assert n == counts["via", f["name"], via], (f, via)
        for v in f["versions"]:
            assert v["hosts"] == counts["versions", f["name"], v["version"]]
    for p in stats["pythons"]:
        assert p["hosts"] == counts["pythons", p["version"]]
    for fp in stats["framework_pythons"]:
        name = fp["name"]
        assert fp["covered"] == counts["covered", name]
        for p, n in by_label(fp["pythons"]).items():
            assert p == OTHER or n == counts["fpy", name, p]
        for v in fp["versions"]:
            assert v["covered"] == counts["scov", name, v["version"]]
            for p, n in by_label(v["pythons"]).items():
                assert p == OTHER or n == counts["spy", name, v["version"], p]
    for table, shown in (("os", {o["name"]: o["hosts"] for o in stats["os"]}),
                         ("virt", stats["virt"]), ("age", stats["age"])):
        named = {b: n for b, n in shown.items() if b != OTHER}
        for b, n in named.items():
            assert n == counts[table, b]
        if OTHER in shown:
            assert shown[OTHER] == total - sum(named.values())


NAMES = ("django", "flask", "fastapi", "sanic")
VERSIONS = ("1.0.1", "2.0.3", "3.1.0")
# An entry's Python: None as in format 1 (or not found).
PYTHONS = (None, "3.9", "3.11", "3.12")
kinds = st.builds(
    host,
    os_=st.sampled_from([("Debian", "12"), ("Debian", "11"),
                         ("Ubuntu", "24.04")]),
    virt=st.sampled_from(report.VIRTS),
    age=st.sampled_from(report.AGES[1:]),
    pythons=st.sets(st.sampled_from(["3.9", "3.11", "3.12"]), max_size=3),
    frameworks=st.lists(st.tuples(st.sampled_from(NAMES),
                                  st.sampled_from(VERSIONS),
                                  st.sampled_from(report.VIAS),
                                  st.sampled_from([True, False, None]),
                                  st.sampled_from(PYTHONS)),
                        max_size=4, unique_by=lambda e: e[:3] + e[4:]))
populations = st.lists(st.tuples(kinds, st.one_of(st.integers(1, 4),
                                                  st.integers(5, 40))),
                       min_size=1, max_size=5)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared_store(request, tmp_path_factory):
    """One store per backend for all examples (emptied before each)."""
    url = database_url(request.param, str(tmp_path_factory.mktemp("db")))
    with Store(url) as s:
        yield s


EXAMPLES = {"sqlite": 300, "postgresql": 100}


def test_random_populations(shared_store):
    examples = EXAMPLES["sqlite" if shared_store.sqlite else "postgresql"]

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(population=populations, k=st.integers(2, 8))
    def check(population, k):
        store_population(shared_store, population)
        stats, by_inst, by_version = published(shared_store, k)
        assert adversary(stats, by_inst, by_version, k) == []
        check_exact(stats, population, k)

    check()


def test_random_populations_with_noise(shared_store):
    """The rule runs on the noised counts, so what is published with
    NOISE_EPSILON passes the same adversary."""
    @settings(max_examples=15, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(population=populations)
    def check(population):
        store_population(shared_store, population)
        # An epsilon this large leaves a threshold of about 10 hosts.
        stats, by_inst, by_version = published(shared_store, K, "1000")
        assert adversary(stats, by_inst, by_version, K) == []

    check()


# -- crafted populations, through the real files -----------------------------------

DJANGO = [("django", "4.2.11", "deb", True)]
FLASK = [("flask", "3.0.3", "venv", False)]
CRAFTED = {
    # The issue's: each host has one OS and one virtualisation.
    "issue": [(host(frameworks=DJANGO), 33),
              (host(("Ubuntu", "24.04"), "container", frameworks=DJANGO), 3)],
    # No bucket alone leaves a small count, but 20 + 13 of 36 do.
    "releases": [(host(frameworks=DJANGO), 20),
                 (host(("Debian", "11"), frameworks=DJANGO), 13),
                 (host(("Ubuntu", "24.04"), frameworks=DJANGO), 3)],
    # A framework's versions: 20 + 6 of 29 leaves the 3 hosts of 5.0.
    "versions": [(host(frameworks=DJANGO), 20),
                 (host(frameworks=[("django", "3.2.25", "pip", False)]), 6),
                 (host(frameworks=[("django", "5.0.6", "pip", None)]), 3),
                 (host(), 7)],
    # Two ways of install that cover a framework: 20 + 12 - 29 = 3 hosts
    # with both.
    "overlap": [(host(frameworks=DJANGO), 17),
                (host(frameworks=[("django", "4.2.11", "venv", True)]), 9),
                (host(frameworks=DJANGO + [("django", "4.2.11", "venv",
                                            True)]), 3),
                (host(), 10)],
    # Nearly every host has Django: the total says who has not (and no
    # remainder of the table says so, as Flask overlaps it).
    "nearly all": [(host(frameworks=DJANGO + FLASK), 28),
                   (host(frameworks=DJANGO), 10), (host(frameworks=FLASK), 2)],
    # Used on all but 2 of a framework's hosts.
    "used": [(host(frameworks=DJANGO), 18),
             (host(frameworks=[("django", "4.2.11", "deb", False)]), 2),
             (host(), 20)],
    "too few": [(host(frameworks=DJANGO), K - 1)],
    # By Python: 23 hosts run Django on 3.11, 20 of them 4.2, so 3 of
    # them run another series on 3.11 (here 5.2, shown on 3.12).
    "cross": [(host(frameworks=[("django", "4.2.11", "deb", True,
                                 "3.11")]), 20),
              (host(frameworks=[("django", "5.2.8", "venv", True,
                                 "3.12")]), 10),
              (host(frameworks=[("django", "5.2.8", "venv", True,
                                 "3.11")]), 3)],
    # Old clients: 30 hosts name Django's Python, 12 (format 1) do not.
    "mixed formats": [(host(frameworks=[("django", "5.2.8", "venv", True,
                                         "3.12")]), 18),
                      (host(frameworks=[("django", "4.2.11", "deb", True,
                                         "3.11")]), 12),
                      (host(frameworks=DJANGO), 12)],
    # Of Django 4.2's 23 hosts, 3 do not name its Python: 4.2's covered
    # hosts would say so.
    "series old": [(host(frameworks=[("django", "4.2.11", "deb", True,
                                      "3.11")]), 20),
                   (host(frameworks=DJANGO), 3),
                   (host(frameworks=[("django", "5.2.8", "venv", True,
                                      "3.12")]), 20),
                   (host(frameworks=[("django", "5.2.8", "venv", True)]),
                    10)],
    # 3 hosts of 23 do not name it: the covered hosts would say so.
    "few old": [(host(frameworks=[("django", "4.2.11", "deb", True,
                                   "3.11")]), 20),
                (host(frameworks=DJANGO), 3)],
}


@pytest.fixture
def store(tmp_path, backend):  # noqa: F811
    with Store(database_url(backend, str(tmp_path))) as s:
        yield s


def run_and_read(store, out, k=K):
    aggregate.run(store, str(out), k, datetime.date(2026, 11, 28))
    return (json.loads((out / "stats.json").read_text()),
            (out / "by_inst.txt").read_text(),
            (out / "by_version.txt").read_text())


@pytest.mark.parametrize("case", CRAFTED)
def test_crafted_populations(store, tmp_path, case):
    store_population(store, CRAFTED[case])
    stats, by_inst, by_version = run_and_read(store, tmp_path / "www")
    assert adversary(stats, by_inst, by_version, K) == []
    check_exact(stats, CRAFTED[case], K)
    if case == "issue":
        assert stats["hosts"] == 36
        assert stats["os"] == [] and stats["virt"] == {}
    if case == "too few":
        assert stats["hosts"] is None
        assert re.search(r"^Total\s+-$", by_inst, re.M)
    if case == "mixed formats":
        assert stats["framework_pythons"] == [{
            "name": "django", "covered": 30,
            "pythons": [{"version": "3.12", "hosts": 18},
                        {"version": "3.11", "hosts": 12}],
            "versions": [
                {"version": "5.2", "covered": 18,
                 "pythons": [{"version": "3.12", "hosts": 18}]},
                {"version": "4.2", "covered": 12,
                 "pythons": [{"version": "3.11", "hosts": 12}]}]}]
    if case == "few old":
        assert stats["framework_pythons"] == []


# -- the adversary can fail ---------------------------------------------------------

def test_the_old_publication_is_caught():
    """What aggregate published before this rule, for the issue's 36
    hosts (every figure at least 5, "other" under 5 left out)."""
    stats = {"generated": "2026-11-28", "hosts": 36, "min_hosts": 5,
             "noise_epsilon": None,
             "frameworks": [{"name": "django", "hosts": 36, "used": 36,
                             "via": {"deb": 36},
                             "versions": [{"version": "4.2", "hosts": 36}]}],
             "os": [{"name": "Debian 12", "hosts": 33}], "pythons": [],
             "virt": {"none": 33}, "age": {"25+": 36}}
    found = adversary(stats, aggregate.by_inst(stats),
                      aggregate.by_version(stats), K)
    assert "+container0 -os[Debian 12] = 3" in found
    assert "+container0 -virt[none] = 3" in found


@pytest.mark.parametrize("check, case", [
    ("_each", "nearly all"), ("_each", "versions"), ("_rest", "releases"),
    ("_rest", "versions"), ("_pair", "overlap")])
def test_a_weakened_rule_is_caught(store, tmp_path, monkeypatch, check,
                                   case):
    """Each check of the rule is needed: without it, the adversary finds a
    small count in a crafted population."""
    monkeypatch.setattr(rule, "CHECKS", tuple(
        c for c in rule.CHECKS if c.__name__ != check))
    store_population(store, CRAFTED[case])
    stats, by_inst, by_version = run_and_read(store, tmp_path / "www")
    assert adversary(stats, by_inst, by_version, K) != []


def _each_alone(shown, containers, k, least, partition, beside):
    """_each as if figures had no containers of their own."""
    return rule._each(shown, containers, k, least, partition, {})


def _unprotected(cells, rows, columns, k, least=None):
    return {c: n for c, n in cells.items() if c[0] in rows and n >= k}


@pytest.mark.parametrize("plant, case", [("cross unprotected", "cross"),
                                         ("no own containers", "series old")])
def test_a_weakened_rule_by_python_is_caught(store, tmp_path, monkeypatch,
                                             plant, case):
    """The tables by Python need the cross-table's rows and columns
    protected together (or the 3 hosts of Django on 3.11 in another
    series than 4.2 are found), and every figure checked against all the
    counts that include it (or the 3 hosts of Django 4.2 that do not name
    its Python are)."""
    if plant == "cross unprotected":
        monkeypatch.setattr(rule, "cross", _unprotected)
    else:
        monkeypatch.setattr(rule, "CHECKS", tuple(
            _each_alone if c is rule._each else c for c in rule.CHECKS))
    store_population(store, CRAFTED[case])
    stats, by_inst, by_version = run_and_read(store, tmp_path / "www")
    found = adversary(stats, by_inst, by_version, K)
    print(f"{plant}: {found}")
    assert found
