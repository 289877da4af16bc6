"""The page, its charts and the history files, from published stats only."""

import csv
import datetime
import io
import json

import pytest

from fleet import Fleet
from populations import published_numbers
from pyweb_popcon import report
from pyweb_popcon.server import published
from pyweb_popcon.server.publish import aggregate, charts, history, page
from pyweb_popcon.server.store import Store
from server_fixtures import make_report

K = 5
FIRST = datetime.date(2026, 11, 1)


@pytest.fixture
def store(tmp_path):
    with Store(f"sqlite://{tmp_path}/popcon.sqlite3") as s:
        yield s


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """(store, output directory, last stats) of a fleet of 300 over 10
    days, published once, shared by the tests that only read it."""
    top = tmp_path_factory.mktemp("replayed")
    with Store(f"sqlite://{top}/popcon.sqlite3") as s:
        yield s, top / "www", replay(s, top / "www", 300, 10)


def replay(store, out, hosts, days, seed=5):
    """A simulated fleet over `days` days, aggregated each day and
    published on the last; the stats of the last."""
    return Fleet(hosts, days, seed).replay(store, str(out), str(out), FIRST,
                                           K, publish=True)


def test_plurals():
    assert page.plural(1, "host") == "1 host"
    assert page.plural(0, "host") == "0 hosts"
    assert page.plural(1250, "host") == "1,250 hosts"
    assert page.plural(1, "day") == "1 day"


def test_history_files_carry_exactly_the_published_numbers(replayed):
    store, out, _ = replayed
    kept = store.history()
    assert len(kept) == 10
    doc = json.loads((out / "history.json").read_text())
    assert doc["days"] == [stats for _, stats in kept]
    rows = list(csv.DictReader(io.StringIO((out / "history.csv").read_text())))
    for day, stats in kept:
        published = sorted(int(r["hosts"]) for r in rows if r["day"] == day)
        assert published == published_numbers(stats), day
        assert min(published) >= K       # the same suppression
    first = [r for r in rows if r["day"] == kept[0][0]]
    assert first[0] == {"day": kept[0][0], "table": "hosts",
                        "framework": "", "bucket": "",
                        "hosts": str(kept[0][1]["hosts"])}
    assert {r["table"] for r in rows} >= {"hosts", "frameworks", "used",
                                          "via", "versions", "os", "pythons",
                                          "virt", "age"}


def snapshot(day, frameworks, hosts=100):
    return day, {"generated": day, "hosts": hosts, "min_hosts": K,
                 "frameworks": [{"name": n, "hosts": h, "used": None,
                                 "via": {}, "versions": v}
                                for n, h, v in frameworks]}


def test_trends_leave_gaps_and_sum_the_rest():
    v = [{"version": "4.2", "hosts": 30}, {"version": "5.0", "hosts": 10}]
    kept = [snapshot("2026-11-01", [("django", 40, v), ("flask", 8, []),
                                    ("other", 6, [])]),
            snapshot("2026-11-02", [("django", 42, v), ("bottle", 9, []),
                                    ("flask", 7, [])])]
    days, lines = history.frameworks_over_time(kept)
    assert days == ["2026-11-01", "2026-11-02"]
    assert dict(lines) == {"hosts": [100, 100], "django": [40, 42],
                           "bottle": [None, 9], "flask": [8, 7],
                           "other": [6, None]}
    days, shares = history.version_shares(kept, "django")
    assert dict(shares) == {"4.2": [75.0, 75.0], "5.0": [25.0, 25.0]}
    assert history.version_shares(kept, "flask") == ([], [])


def test_version_shares_add_up_to_100(replayed):
    store, _, stats = replayed
    kept = store.history()
    for name in history.leading(stats, with_versions=True):
        days, lines = history.version_shares(kept, name)
        assert days
        for i in range(len(days)):
            assert sum(values[i] for _, values in lines) == \
                pytest.approx(100)


def test_charts_keep_text_as_text_and_are_small(replayed):
    store, out, stats = replayed
    made = sorted(p.name for p in out.glob("*.svg"))
    leading = history.leading(stats, with_versions=True)
    # And, from report format 2 on, each leading framework by Python.
    by_python = [published.python_chart(n) for n in leading
                 if (history.pythons_of(stats, n) or {}).get("versions")]
    by_python += [published.python_trend_chart(n) for n in leading
                  if len(history.python_shares(store.history(), n)[0]) > 1]
    assert by_python
    assert made == sorted(["frameworks.svg", "history.svg", "versions.svg",
                           "via.svg"] + [f"versions-{n}.svg"
                                         for n in leading] + by_python)
    html = (out / "index.html").read_text()
    assert "<script" not in html
    for name in made:
        svg = (out / name).read_bytes()
        assert b"<text" in svg and b"DejaVuSans-" not in svg, name
        assert len(svg) < 60_000, (name, len(svg))
        assert f'src="{name}"' in html


def test_nothing_to_draw_is_a_sentence(store, tmp_path):
    out = tmp_path / "www"
    aggregate.run(store, str(out), K, FIRST)
    assert charts.render(json.loads((out / "stats.json").read_text()),
                         store.history(), published.title) == {}
    html = " ".join((out / "index.html").read_text().split())
    assert ("Fewer than 5 hosts reported in the 20 days up to 2026-11-01, "
            "so no number is published yet") in html
    assert "No framework has reached 5 hosts yet." in html
    assert "<img" not in html and "<table" not in html
    assert not list(out.glob("*.svg"))


def test_one_host_in_the_singular(store, tmp_path):
    out = tmp_path / "www"
    store.put([(1, "r", report.parse(make_report()))])
    aggregate.run(store, str(out), 1, FIRST, expire_days=1)
    html = " ".join((out / "index.html").read_text().split())
    assert "<strong>1 host</strong> reported in the 1 day up to" in html
    assert "counts at least 1 host:" in html
    assert "1 hosts" not in html and "1 days" not in html


def test_page_escapes_what_it_shows():
    # Report validation keeps markup out of the database; the template
    # must escape anyway, so this feeds the renderer markup directly.
    stats = {"generated": "<script>x</script>", "hosts": 5, "min_hosts": 5,
             "frameworks": [{"name": "django", "hosts": 5, "used": None,
                             "via": {}, "versions": []}],
             "os": [{"name": "<b>OS</b>", "hosts": 5}], "pythons": [],
             "virt": {}, "age": {}}
    html = page.render(stats, [], {}, 20, note="<i>note</i>")
    assert "<script>x" not in html and "&lt;script&gt;" in html
    assert "<b>OS" not in html and "&lt;b&gt;OS" in html
    assert "<i>note" not in html and "&lt;i&gt;note" in html


def test_a_chart_no_longer_drawn_is_removed(store, tmp_path):
    out = tmp_path / "www"
    out.mkdir()
    (out / "versions-gone.svg").write_text("<svg/>")
    (out / "kept.txt").write_text("not a chart")
    aggregate.run(store, str(out), K, FIRST)
    assert not (out / "versions-gone.svg").exists()
    assert (out / "kept.txt").exists()
