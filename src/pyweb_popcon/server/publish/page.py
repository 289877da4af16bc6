"""The published page, index.html: every table of stats.json, each chart
with its numbers as a table, and the trends of the kept history.

Rendered with autoescaping and without a line of script.  Where there is
nothing to show, a sentence says so instead of an empty chart.  The
sections are built here, so the template only lays them out.
"""

from typing import NamedTuple

from pyweb_popcon.server.publish import history as hist
from pyweb_popcon.server.published import OTHER, title

DASH = "\u2013"      # a number not published (under MIN_HOSTS)
VIA_COLUMNS = ("deb", "pip", "venv", OTHER)
# The tables about the machines, by stats.json key, with how to name them;
# a key not listed here is shown too, under its own name.
MACHINE_TABLES = {
    "os": ("Operating system", "Release", "operating system release"),
    "arch": ("Architecture", "Architecture", "architecture"),
    "pythons": ("Python versions", "Python", "Python version"),
    "virt": ("Virtualisation", "Kind", "kind of virtualisation"),
    "age": ("Machine age", "Age", "machine age"),
}
# How buckets are said on the page (stats.json keeps the codes).
NAMES = {
    "virt": {"none": "none (real hardware)", "vm": "virtual machine",
             "container": "container"},
    "age": {"1": "1 week", "2-4": "2\u20134 weeks", "5-24": "5\u201324 weeks",
            "25+": "25 weeks or more"},
}


class Table(NamedTuple):
    caption: str
    head: list
    rows: list           # lists of cells; a cell is text or a number
    bars: list = []      # per row, a width in % for a bar, or empty
    collapsed: bool = False   # long: inside a closed <details>
    key: int = 0         # the column that names a row (its header cell)

    @property
    def numeric(self):
        """Per column, whether it holds numbers (aligned right)."""
        return [all(isinstance(c, int) or c == DASH or str(c).endswith("%")
                    for c in column) for column in zip(*self.rows)]


class Section(NamedTuple):
    id: str
    heading: str
    intro: str
    chart: object = None      # a charts.Chart
    table: object = None      # a Table
    empty: str = ""           # the sentence shown instead of both
    parts: tuple = ()         # Sections shown side by side within it


def plural(n, word):
    """'1 host', '2 hosts', '1,250 hosts'."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def shown(value):
    return DASH if value is None else value


def _framework_table(stats):
    return Table("Hosts per framework",
                 ["#", "Framework", "Hosts", "Used in the last 30 days"],
                 [[i, title(f["name"]), f["hosts"], shown(f.get("used"))]
                  for i, f in enumerate(stats["frameworks"], 1)], key=1)


def _over_time_table(history):
    days, lines = hist.frameworks_over_time(history)
    head = ["Day"] + ["All hosts" if name == "hosts" else
                      "Others, summed" if name == OTHER else title(name)
                      for name, _ in lines]
    return Table("Hosts per day", head,
                 [[day] + [shown(values[i]) for _, values in lines]
                  for i, day in reversed(list(enumerate(days)))],
                 collapsed=True)


def _versions_table(fws):
    return Table("Hosts per version series (major.minor)",
                 ["Framework", "Version", "Hosts"],
                 [[title(f["name"]), v["version"], v["hosts"]]
                  for f in fws for v in f["versions"]])


def _series_table(f):
    return Table(f"{title(f['name'])}: hosts per version series",
                 ["Version", "Hosts"],
                 [[v["version"], v["hosts"]] for v in f["versions"]])


def _shares_table(history, name):
    days, lines = hist.version_shares(history, name)
    return Table(f"{title(name)}: shares of its version series per day",
                 ["Day"] + ["Other versions" if s == OTHER else s
                            for s, _ in lines],
                 [[day] + [f"{values[i]:.0f}%" for _, values in lines]
                  for i, day in reversed(list(enumerate(days)))],
                 collapsed=True)


def _cross_table(fp):
    """A framework's version series by Python, with the margins: each
    series' hosts that name a Python, and each Python's hosts of all its
    series."""
    name = fp["name"]
    cells = [dict(hist.buckets(v["pythons"])) for v in fp["versions"]]
    totals = dict(hist.buckets(fp["pythons"]))
    pythons = sorted({p for found in cells + [totals] for p in found
                      if p != OTHER}, key=hist._minor)
    pythons += [OTHER] if any(OTHER in found for found in cells) else []
    return Table(f"{title(name)}: hosts per version series (rows) and "
                 "Python minor (columns); All: the hosts that name a Python "
                 "(a host may run a series under two)",
                 ["Version"] + ["other" if p == OTHER else p
                                for p in pythons] + ["All"],
                 [[v["version"]] + [shown(found.get(p)) for p in pythons]
                  + [v["covered"]] for v, found in zip(fp["versions"], cells)]
                 + [["All"] + [shown(totals.get(p)) for p in pythons]
                    + [fp["covered"]]])


def _python_shares_table(history, name):
    days, lines = hist.python_shares(history, name)
    return Table(f"{title(name)}: shares of its Pythons per day",
                 ["Day"] + ["Other" if p == OTHER else f"Python {p}"
                            for p, _ in lines],
                 [[day] + [f"{values[i]:.0f}%" for _, values in lines]
                  for i, day in reversed(list(enumerate(days)))],
                 collapsed=True)


def _via_table(stats):
    fws = stats["frameworks"]
    columns = [via for via in VIA_COLUMNS
               if via != OTHER or any(OTHER in f["via"] for f in fws)]
    return Table("Hosts per way of installing: deb is a Debian package, "
                 "pip system-wide pip, venv a virtual environment",
                 ["Framework"] + columns,
                 [[title(f["name"])] + [shown(f["via"].get(via))
                                        for via in columns] for f in fws])


def _machine_table(key, found):
    heading, column, _ = MACHINE_TABLES.get(key, (key, key, key))
    top = max(n for _, n in found)
    labels = NAMES.get(key, {})
    return Table(heading, [column, "Hosts"],
                 [[labels.get(b, b), n] for b, n in found],
                 bars=[round(100 * n / top) for _, n in found])


def sections(stats, history, charts):
    """The page's sections, top to bottom; `charts` as charts.render."""
    k = stats["min_hosts"]
    at_least = plural(k, "host")
    none_yet = f"No framework has reached {at_least} yet."
    fws = stats["frameworks"]
    first = history[0][0] if history else stats["generated"]
    leading = hist.leading(stats, with_versions=True)
    out = [
        Section("frameworks", "Frameworks",
                "How many hosts have each framework installed, and how "
                "many of them imported it in the last 30 days (where the "
                "machine keeps access times).",
                charts.get("frameworks"),
                _framework_table(stats) if fws else None, none_yet),
        Section("over-time", "Over time",
                "Hosts per day, all of them and for each leading framework; "
                "the other frameworks are summed (a host with two of them "
                f"counts twice). A gap is a day with under {at_least}.",
                charts.get("over_time"),
                _over_time_table(history) if len(history) > 1 else None,
                f"The history starts on {first}: the lines over time begin "
                "with its second day."),
        Section("versions", "Versions",
                "The version series (major.minor) of the leading frameworks, "
                "and how they shared each framework's hosts day by day. A "
                "host with two series of a framework counts in both.",
                charts.get("versions"),
                _versions_table([f for f in fws if f["name"] in leading])
                if leading else None,
                f"No version of any framework has reached {at_least} yet.",
                tuple(_version_trend(history, name, charts)
                      for name in leading)),
        Section("more-versions", "Versions of the other frameworks", "",
                parts=tuple(Section(f"versions-of-{f['name']}",
                                    title(f["name"]), "",
                                    table=_series_table(f))
                            for f in fws if f["versions"]
                            and f["name"] not in leading)),
        Section("pythons-per-framework", "Pythons per framework",
                "Which Python minor each leading framework's version series "
                "run under, from the reports that name it (clients from "
                "report format 2 on); the last column and row are the "
                "margins. " + _coverage(stats, leading),
                parts=tuple(part for name in leading for part in
                            _pythons_of(stats, history, name, charts))),
        Section("via", "Ways of installing",
                "From a Debian package, with pip system-wide, or in a "
                "virtual environment; a host may have a framework in "
                "several ways.",
                charts.get("via"), _via_table(stats) if fws else None,
                none_yet),
        Section("machines", "The machines",
                "What the hosts run on, from the same reports. A machine's "
                "age is the weeks since its host ID was made: a fresh "
                "install, or a cloned image, starts again at 1.",
                parts=tuple(_machines(stats, at_least))),
    ]
    return [s for s in out if s.chart or s.table or s.empty or s.parts]


def _version_trend(history, name, charts):
    chart = charts.get(f"trend-{name}")
    return Section(f"versions-{name}", f"{title(name)} versions over time",
                   "",
                   chart, _shares_table(history, name) if chart else None,
                   f"{title(name)}'s version series over time begin with "
                   "the history's second day.")


def _coverage(stats, leading):
    """In words, how many hosts of each leading framework the tables by
    Python cover."""
    hosts = {f["name"]: f["hosts"] for f in stats["frameworks"]}
    covered = [f"{title(fp['name'])} {fp['covered']:,} of "
               f"{hosts[fp['name']]:,}" for fp in
               stats.get("framework_pythons", ()) if fp["name"] in leading]
    if not covered:
        return ""
    return "Hosts whose reports name the Python: " + ", ".join(covered) + "."


def _pythons_of(stats, history, name, charts):
    """A leading framework's series by Python, and its Pythons over
    time."""
    fp = hist.pythons_of(stats, name)
    trend = charts.get(f"python-trend-{name}")
    yield Section(f"pythons-{name}", f"{title(name)} by Python", "",
                  charts.get(f"pythons-{name}"),
                  _cross_table(fp) if fp and fp["versions"] else None,
                  f"No version series of {title(name)} has reached "
                  "enough hosts that name their Python yet.")
    yield Section(f"pythons-over-time-{name}",
                  f"{title(name)}'s Pythons over time", "", trend,
                  _python_shares_table(history, name) if trend else None,
                  f"{title(name)}'s Pythons over time begin with the "
                  "second day they are published.")


def _machines(stats, at_least):
    present = hist.tables(stats)
    keys = [key for key in MACHINE_TABLES if key in stats]
    keys += [key for key in present if key not in MACHINE_TABLES]
    for key in keys:
        heading, _, what = MACHINE_TABLES.get(key, (key, key, key))
        yield Section(key, heading, "", None,
                      _machine_table(key, present[key])
                      if key in present else None,
                      f"No {what} has reached {at_least} yet.")


def render(stats, history, charts, expire_days, note=""):
    """index.html, autoescaped; `note` is PAGE_NOTE."""
    import jinja2
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pyweb_popcon.server.publish",
                                   "templates"),
        autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("index.html").render(
        stats=stats, days=len(history),
        first=history[0][0] if history else stats["generated"],
        sections=sections(stats, history, charts), expire_days=expire_days,
        note=note, plural=plural)
