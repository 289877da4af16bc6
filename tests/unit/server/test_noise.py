"""NOISE_EPSILON: the discrete Laplace sampler, the sensitivity bound, and
the publication with and without noise, on a real store."""

import ast
import datetime
import math
import statistics as stat
import uuid
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyweb_popcon import catalogue, report
from pyweb_popcon.common.conffile import ConfigError
from pyweb_popcon.server.publish import aggregate, noise, rule
from pyweb_popcon.server import settings as server_settings
from pyweb_popcon.server.store import Store
from populations import NOW, host, store_population
from server_fixtures import backend, database_url  # noqa: F401

K = 5
DJANGO = ("django", "4.2.11", "deb", True)
MIXED = [(host(frameworks=[DJANGO]), 20),
         (host(("Debian", "11"), "vm", pythons=("3.9", "3.11"),
               frameworks=[DJANGO, ("flask", "3.0.3", "venv", False)]), 9),
         (host(frameworks=[("sanic", "23.6.0", "pip", None)]), 3)]
SAMPLES = 20_000
# Each check allows 5 standard errors: a correct sampler fails one with
# probability under 1e-6.
Z = 5


def moments(scale):
    """(P(0), variance, fourth moment) of the discrete Laplace at `scale`."""
    a = math.exp(-1 / scale)
    p0 = (1 - a) / (1 + a)
    fourth = 2 * sum(z**4 * p0 * a**z for z in range(1, int(80 * scale)))
    return p0, 2 * a / (1 - a) ** 2, fourth


@pytest.mark.parametrize("scale", [Fraction(5), Fraction(7, 3)])
def test_the_sampler_has_the_discrete_laplace_distribution(scale):
    draws = [noise.discrete_laplace(scale) for _ in range(SAMPLES)]
    p0, variance, fourth = moments(float(scale))
    assert all(isinstance(z, int) for z in draws)
    assert abs(stat.fmean(draws)) < Z * math.sqrt(variance / SAMPLES)
    assert abs(stat.pvariance(draws, mu=0) - variance) < Z * math.sqrt(
        (fourth - variance**2) / SAMPLES)
    share = draws.count(0) / SAMPLES
    assert abs(share - p0) < Z * math.sqrt(p0 * (1 - p0) / SAMPLES)


def test_the_sampler_draws_on_secrets(monkeypatch):
    calls = []
    real = noise.secrets.randbelow
    monkeypatch.setattr(noise.secrets, "randbelow",
                        lambda n: calls.append(n) or real(n))
    noise.discrete_laplace(Fraction(3))
    assert calls
    with open(noise.__file__) as f:
        tree = ast.parse(f.read())
    imported = {a.name for node in ast.walk(tree)
                if isinstance(node, ast.Import) for a in node.names}
    assert "secrets" in imported and "random" not in imported


def test_the_threshold_keeps_a_lone_bucket_hidden():
    """A bucket of one host is shown when 1 + noise reaches the threshold:
    for every bucket a report can have, less than DELTA altogether."""
    for epsilon in ("0.1", "1", "10"):
        a = math.exp(-1 / float(noise.scale(epsilon)))
        # P(noise >= t) = a**t / (1 + a)
        tail = a ** (noise.selection_threshold(epsilon) - 1) / (1 + a)
        assert noise.sensitivity() * tail <= noise.DELTA


# -- the sensitivity bound -----------------------------------------------------

@pytest.fixture
def store(tmp_path, backend):  # noqa: F811
    with Store(database_url(backend, str(tmp_path))) as s:
        yield s


def flat(counts):
    """Every count the noise covers, as {(table, key): n}."""
    out = {("hosts",): counts["hosts"]}
    for name, (hosts, used) in counts["frameworks"].items():
        out["frameworks", name] = hosts
        out["used", name] = used
    for table in ("via", "versions", "os", "pythons", "virt", "age",
                  "covered", "framework_pythons", "series_covered",
                  "series_pythons"):
        out.update({(table, key): n for key, n in counts[table].items()})
    return out


def changed(store, message):
    """How many counts one report changes, and by how much at most."""
    before = flat(rule.folded(store, 1))
    store.put([(NOW, uuid.uuid4().hex, message)])
    after = flat(rule.folded(store, 1))
    deltas = [abs(after.get(key, 0) - before.get(key, 0))
              for key in set(before) | set(after)]
    return sum(d > 0 for d in deltas), max(deltas)


def report_of(pythons, entries):
    return report.Report(
        host_id=str(uuid.uuid4()), date="2026-11-28", client="0.1.0",
        os=report.OS("Debian", "12", "amd64"), virt="vm", age="1",
        pythons=tuple(pythons),
        frameworks=tuple(report.Entry(n, v, via, 1, True, python)
                         for n, v, via, python in entries))


def widest_report():
    """A report that changes as many counts as the format allows: every
    Python it may list, every framework every way, and each of its
    MAX_FRAMEWORKS entries a version series of its own and, within its
    framework, a Python of its own."""
    names = sorted(catalogue.frameworks())
    entries = [(n, f"{i}.{j}", via, f"3.{j}") for i, n in enumerate(names)
               for j, via in enumerate(report.VIAS)]
    extra = report.MAX_FRAMEWORKS - len(entries)
    entries += [(names[j % len(names)], f"100.{j}", "deb",
                 f"3.{len(report.VIAS) + j // len(names)}")
                for j in range(extra)]
    pythons = [f"3.{i}" for i in range(report.MAX_PYTHONS)]
    return report_of(pythons, entries)


def test_the_bound_is_reached_and_not_exceeded(store):
    store_population(store, MIXED)
    rep = widest_report()
    report.parse(report.serialise(rep))            # a valid report
    assert changed(store, rep) == (noise.sensitivity(), 1)
    # 484 before each entry's Python was counted: 26 covered counts, and
    # 256 each of framework, series covered and series by Python.
    assert noise.sensitivity() == 1278 and len(catalogue.frameworks()) == 26


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(pythons=st.sets(st.sampled_from([f"3.{i}" for i in range(20)]),
                       max_size=report.MAX_PYTHONS),
       entries=st.lists(st.tuples(st.sampled_from(sorted(
           catalogue.frameworks())[:4]), st.sampled_from(
           ["1.0", "1.1", "2.0", "2.0.1"]), st.sampled_from(report.VIAS),
           st.sampled_from([None, "3.11", "3.12"])),
           max_size=20, unique=True))
def test_no_report_changes_more_than_the_bound(tmp_path_factory, pythons,
                                               entries):
    top = tmp_path_factory.mktemp("db")
    with Store(f"sqlite://{top}/popcon.sqlite3") as s:
        store_population(s, MIXED)
        count, most = changed(s, report_of(pythons, entries))
    assert count <= noise.sensitivity() and most == 1


# -- publishing with and without noise -------------------------------------------

def test_without_noise_the_publication_is_exact(store):
    store_population(store, MIXED)
    assert rule.publication(store, K, "2026-11-28") == \
        rule.statistics(rule.folded(store, K), K, "2026-11-28")
    assert rule.publication(store, K, "2026-11-28", "") == \
        rule.publication(store, K, "2026-11-28")


def figures(stats):
    """Every number published, with what it must not exceed."""
    out = []
    for f in stats["frameworks"]:
        out.append((f["hosts"], stats["hosts"]))
        out += [(n, f["hosts"]) for n in [f["used"], *f["via"].values(),
                                          *(v["hosts"] for v in f["versions"])]
                if n is not None]
    out += [(e["hosts"], stats["hosts"]) for e in stats["os"] +
            stats["pythons"]]
    out += [(n, stats["hosts"]) for n in [*stats["virt"].values(),
                                          *stats["age"].values()]]
    return out


def test_with_noise_every_count_is_noised_and_consistent(store, tmp_path):
    # 600 hosts in three kinds, so that at epsilon 200 (noise of about 3
    # hosts, threshold 42) no figure is near another or the total and
    # none is withheld by chance.
    store_population(store, [
        (host(frameworks=[DJANGO]), 300),
        (host(("Debian", "11"), "vm", pythons=("3.9",),
              frameworks=[("django", "5.0.6", "venv", False),
                          ("flask", "3.0.3", "pip", True)]), 200),
        (host(virt="container", age="1", pythons=("3.12",)), 100)])
    exact = rule.statistics(rule.folded(store, K), K, "2026-11-28")
    runs = [aggregate.run(store, str(tmp_path / "www"), K,
                          datetime.date(2026, 11, 28), epsilon="200"),
            rule.publication(store, K, "2026-11-28", "200")]
    for stats in runs:
        assert stats["noise_epsilon"] == 200.0
        numbers = figures(stats)
        assert len(numbers) >= 10
        assert all(isinstance(n, int) and 0 <= n <= top
                   for n, top in numbers)
        # A partition shown adds up to the total ("other" is the rest).
        for shown in (stats["virt"].values(), stats["age"].values(),
                      [o["hosts"] for o in stats["os"]]):
            assert sum(shown) in (0, stats["hosts"])
    # Noised: not the exact figures, and not the same twice.
    assert runs[0] != runs[1]
    assert figures(runs[0]) != figures(exact)
    # What is kept for the history is what was published.
    assert store.history() == [("2026-11-28", runs[0])]


@pytest.mark.parametrize("value, ok", [("", True), ("1", True),
                                       ("0.5", True), ("0", False),
                                       ("-1", False), ("1e3", False),
                                       ("0.", False), ("inf", False)])
def test_noise_epsilon_values(tmp_path, value, ok):
    conf = tmp_path / "server.conf"
    conf.write_text(f'NOISE_EPSILON="{value}"\n')
    if ok:
        assert server_settings.load(str(conf))["NOISE_EPSILON"] == value
    else:
        with pytest.raises(ConfigError, match=f"{conf}:1: NOISE_EPSILON: "
                                              "expected a positive decimal"):
            server_settings.load(str(conf))


def test_config_prints_it(tmp_path):
    from server_fixtures import run_server
    conf = tmp_path / "server.conf"
    conf.write_text('NOISE_EPSILON="0.5"\n')
    out = run_server(str(conf), "config").stdout
    assert 'NOISE_EPSILON="0.5"  # differential privacy' in out
