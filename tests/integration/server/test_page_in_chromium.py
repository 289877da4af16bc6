"""The published page in a real browser: Debian's chromium, headless.

The page comes from a store filled with a simulated fleet over three weeks
(and from an empty one), through the real aggregate, and is served by the
real receiver.  At 375 px (a phone) and 1280 px wide the DOM must hold
every table, no horizontal scroll, only loaded images and no script; the
screenshots are kept for a person to look at (the directory is printed).
"""

import datetime
import json
import os

import pytest

import browser
from fleet import Fleet
from pyweb_popcon.server.publish import history
from server_fixtures import Server, running_receiver

pytestmark = pytest.mark.skipif(not browser.available(),
                                reason="Debian's chromium is not installed")
WIDTHS = (375, 1280)
DAYS = 21
DOM = """(() => {
  const sections = {};
  for (const s of document.querySelectorAll("section[id]"))
    sections[s.id] = s.querySelectorAll(":scope table, :scope > div table")
                      .length;
  return {
    scrollWidth: document.documentElement.scrollWidth,
    width: window.innerWidth,
    scripts: document.scripts.length,
    images: [...document.images].map(i => ({src: i.getAttribute("src"),
                                            loaded: i.complete,
                                            width: i.naturalWidth})),
    tables: document.querySelectorAll("table").length,
    sections: sections,
    text: document.body.innerText,
  };
})()"""


def fill(srv):
    """DAYS days of a simulated fleet, a snapshot per day, as aggregate
    would have made them; today's page by the real command."""
    today = datetime.datetime.now(datetime.timezone.utc).date()
    with srv.store() as store:
        Fleet(500, DAYS, seed=3).replay(
            store, srv.spool, srv.output,
            today - datetime.timedelta(days=DAYS - 1))
    srv.run("aggregate")


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def chromium():
    with browser.Browser() as b:
        yield b


def look(chromium, base, name, shots):
    """{width: what the DOM says} for the page at each width."""
    seen = {}
    for width in WIDTHS:
        page = chromium.open(base + "/", width)
        seen[width] = page.evaluate(DOM)
        seen[width]["problems"] = page.problems()
        page.screenshot(shots / f"{name}-{width}.png")
    return seen


def common(seen):
    for width, dom in seen.items():
        assert dom["width"] == width
        assert dom["scrollWidth"] <= width, f"horizontal scroll at {width}"
        assert dom["scripts"] == 0
        assert dom["problems"] == []
        for image in dom["images"]:
            assert image["loaded"] and image["width"] > 0, image


def test_populated_page(tmp_path, shots, chromium, capsys):
    srv = Server(tmp_path / "srv", "sqlite")
    fill(srv)
    with open(os.path.join(srv.output, "stats.json")) as f:
        stats = json.load(f)
    with running_receiver(srv, tmp_path / "receiver.log") as base:
        seen = look(chromium, base, "populated", shots)
    with capsys.disabled():
        print(f"\nscreenshots of the page: {shots}")
    common(seen)
    charts = sorted(n for n in os.listdir(srv.output) if n.endswith(".svg"))
    for width, dom in seen.items():
        # Every chart there is, shown and loaded.
        assert sorted(i["src"] for i in dom["images"]) == charts
        # Every table of stats.json, and each chart's numbers.
        tables = ["frameworks", "over-time", "versions", "via"]
        tables += list(history.tables(stats))
        assert [t for t in tables if not dom["sections"].get(t)] == []
        for name in history.leading(stats, with_versions=True):
            assert dom["sections"][f"versions-{name}"] == 1
            # Its series by Python, as a chart and a table, and its
            # Pythons over time, where the reports name them.
            if (history.pythons_of(stats, name) or {}).get("versions"):
                assert dom["sections"][f"pythons-{name}"] == 1
                assert f"pythons-{name}.svg" in charts
                assert f"pythons-over-time-{name}.svg" in charts
        assert "Hosts whose reports name the Python: Django " in dom["text"]
        assert f"{stats['hosts']:,} hosts reported in the 20 days up to " \
            f"{stats['generated']}" in dom["text"]
        assert "counts at least 5 hosts" in dom["text"]
    assert {"history.svg", "frameworks.svg", "versions.svg",
            "via.svg"} <= set(charts)
    assert len(stats["frameworks"]) > 5 and stats["hosts"] > 300


def test_empty_page(tmp_path, shots, chromium):
    srv = Server(tmp_path / "srv", "sqlite")
    srv.run("aggregate")
    with running_receiver(srv, tmp_path / "receiver.log") as base:
        seen = look(chromium, base, "empty", shots)
    common(seen)
    for dom in seen.values():
        assert dom["images"] == [] and dom["tables"] == 0
        for sentence in (
                "Fewer than 5 hosts reported in the 20 days up to",
                "No framework has reached 5 hosts yet.",
                "the lines over time begin with its second day",
                "No version of any framework has reached 5 hosts yet.",
                "No operating system release has reached 5 hosts yet.",
                "No Python version has reached 5 hosts yet.",
                "No machine age has reached 5 hosts yet."):
            assert sentence in dom["text"], sentence
    assert [n for n in os.listdir(srv.output) if n.endswith(".svg")] == []
