"""A simulated fleet: a seeded population of hosts, with the spreads a real
one might have, reporting weekly over a stretch of days.

For `make demo` and the page's tests.  Hosts join and leave during the
stretch (so expiry has work), some upgrade their frameworks (so version
shares move), and a few run rare frameworks and releases (so suppression
has work).  Each framework runs under a Python its release series
supports (a Debian package: the release's own version on its Python), and
a share of hosts keep an old client that sends report format 1 (no Python
per framework), half of them upgrading during the stretch.  Every report
is valid; nothing here is a real machine, and the demo says so.
"""

import datetime
import random
import uuid

from pyweb_popcon import report

# name: (share of hosts that have it, [(version, weight)], newer version
# some hosts upgrade to during the stretch, or None)
FRAMEWORKS = {
    "django": (0.40, [("3.2.25", 8), ("4.2.26", 35), ("5.1.14", 10),
                      ("5.2.8", 35), ("6.0", 12)], "5.2.8"),
    "flask": (0.30, [("2.2.5", 20), ("2.3.3", 15), ("3.0.3", 35),
                     ("3.1.2", 30)], "3.1.2"),
    "fastapi": (0.16, [("0.104.1", 20), ("0.110.3", 30), ("0.115.14", 50)],
                "0.115.14"),
    "djangorestframework": (0.14, [("3.14.0", 35), ("3.15.2", 40),
                                   ("3.16.1", 25)], None),
    "aiohttp": (0.09, [("3.8.6", 30), ("3.9.5", 35), ("3.12.15", 35)], None),
    "tornado": (0.07, [("6.2", 40), ("6.4.2", 40), ("6.5.2", 20)], None),
    "twisted": (0.04, [("22.4.0", 50), ("24.11.0", 50)], None),
    "streamlit": (0.04, [("1.32.2", 50), ("1.40.1", 50)], None),
    "wagtail": (0.03, [("5.2.6", 60), ("6.3", 40)], None),
    "gradio": (0.025, [("4.44.1", 100)], None),
    "dash": (0.02, [("2.18.2", 100)], None),
    "pyramid": (0.02, [("2.0.2", 100)], None),
    "bottle": (0.015, [("0.12.25", 100)], None),
    "falcon": (0.012, [("3.1.3", 100)], None),
    "sanic": (0.01, [("23.12.1", 100)], None),
    "cherrypy": (0.008, [("18.9.0", 100)], None),
    "quart": (0.006, [("0.19.9", 100)], None),
    "litestar": (0.004, [("2.13.0", 100)], None),
    "nicegui": (0.002, [("2.7.0", 100)], None),
    "web-py": (0.001, [("0.62", 100)], None),
}
# The Python minors each release series supports (its documentation's),
# first and last; a series not listed runs on 3.8 to 3.13.
SUPPORTS = {
    ("django", "2.2"): (5, 9), ("django", "3.2"): (6, 10),
    ("django", "4.2"): (8, 12), ("django", "5.1"): (10, 13),
    ("django", "5.2"): (10, 14), ("django", "6.0"): (12, 14),
    ("flask", "1.1"): (5, 10), ("flask", "2.2"): (7, 12),
    ("flask", "3.1"): (9, 14), ("fastapi", "0.104"): (8, 12),
    ("djangorestframework", "3.14"): (6, 11),
    ("djangorestframework", "3.16"): (9, 14), ("aiohttp", "3.8"): (6, 11),
    ("aiohttp", "3.12"): (9, 14), ("tornado", "6.5"): (9, 14),
    ("gradio", "4.44"): (10, 13), ("nicegui", "2.7"): (9, 13),
}
# What a Debian or Ubuntu release packages, where a fleet host has it
# from a Debian package (others' packages: as any other install).
PACKAGED = {
    ("django", "11"): "2.2.28", ("django", "12"): "3.2.19",
    ("django", "13"): "4.2.23", ("django", "22.04"): "3.2.12",
    ("django", "24.04"): "4.2.11", ("flask", "11"): "1.1.2",
    ("flask", "12"): "2.2.2", ("flask", "13"): "3.1.1",
    ("flask", "22.04"): "2.0.1", ("flask", "24.04"): "3.0.2",
}
# vendor, release, weight, the release's Python
SYSTEMS = [("Debian", "12", 46, "3.11"), ("Debian", "11", 14, "3.9"),
           ("Debian", "13", 6, "3.13"), ("Ubuntu", "22.04", 16, "3.10"),
           ("Ubuntu", "24.04", 16, "3.12"), ("Devuan", "5", 0.1, "3.11"),
           ("Raspbian", "12", 0.1, "3.11")]
ARCHES = [("amd64", 84), ("arm64", 13), ("armhf", 2), ("i386", 0.1)]
VIRTS = [("none", 30), ("vm", 45), ("container", 25)]
VIAS = [("deb", 30), ("pip", 15), ("venv", 55)]
USED = [(True, 70), (False, 20), (None, 10)]
EXTRA_PYTHONS = ["3.12", "3.11", "3.13"]
# A venv's Python when not the system's: self-built, pyenv, uv, deadsnakes.
OWN_PYTHONS = [("3.9", 5), ("3.10", 10), ("3.11", 20), ("3.12", 30),
               ("3.13", 25), ("3.14", 10)]
# Hosts still on a client of report format 1 (no Python per framework),
# and the share of them that upgrade (and consent again) in the stretch.
OLD_CLIENTS = 0.35
UPGRADING = 0.5


def supports(name, version, python):
    """Whether release `version` of framework `name` runs on `python`."""
    first, last = SUPPORTS.get((name, series(version)), (8, 13))
    return first <= int(python.split(".")[1]) <= last


def series(version):
    return ".".join(version.split(".")[:2])


def _pick(rng, choices):
    values, weights = zip(*choices)
    return rng.choices(values, weights)[0]


class Host:
    """One simulated machine: what it runs, when it joins and leaves."""

    def __init__(self, rng, days):
        self.host_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        vendor, release, _, python = rng.choices(
            SYSTEMS, [s[2] for s in SYSTEMS])[0]
        self.os = report.OS(vendor, release, _pick(rng, ARCHES))
        self.virt = _pick(rng, VIRTS)
        self.pythons = tuple(sorted({python} | (
            {rng.choice(EXTRA_PYTHONS)} if rng.random() < 0.2 else set())))
        # Most hosts were there before the stretch and stay; some join
        # later (the contest grows: new machines) and some stop reporting.
        self.joins = 0 if rng.random() < 0.55 else rng.randrange(days)
        # Weeks its host ID existed before it first reports here.
        self.weeks_old = 0 if self.joins else rng.choice(
            [0, 1, 3, 10, 30, 30, 60, 100])
        self.leaves = days if rng.random() < 0.85 else rng.randrange(
            self.joins + 1, days + 1)
        self.phase = rng.randrange(7)       # its day of the week
        # An old client sends format 1 until (if ever) it is upgraded.
        self.format_2_on = 0 if rng.random() >= OLD_CLIENTS else (
            rng.randrange(days) if rng.random() < UPGRADING else days)
        self.frameworks = []
        for name, (share, versions, newer) in FRAMEWORKS.items():
            # Newer hosts lean to FastAPI, older ones to Flask.
            lean = 1.5 if name == "fastapi" and self.joins else 1.0
            if rng.random() < share * lean:
                self.frameworks.append(self._install(rng, days, name,
                                                     versions, newer,
                                                     release, python))

    def _install(self, rng, days, name, versions, newer, release, system):
        """(name, version, via, used, Python, day of upgrade or None,
        newer): a Debian package runs the release's own version on its
        Python; other installs a version that supports the system's
        Python or, in a venv, one of the Pythons people add."""
        via = _pick(rng, VIAS)
        if via == "deb" and (name, release) in PACKAGED:
            return (name, PACKAGED[name, release], via, _pick(rng, USED),
                    system, None, newer)
        version = _pick(rng, versions)
        own = [p for p, _ in OWN_PYTHONS if supports(name, version, p)]
        if via == "venv" and own and (rng.random() < 0.4 or not supports(
                name, version, system)):
            python = _pick(rng, [c for c in OWN_PYTHONS if c[0] in own])
        elif supports(name, version, system):
            python = system
        else:       # what pip resolves on this Python
            version = next((v for v, _ in sorted(
                versions, key=lambda c: [int(x) for x in c[0].split(".")],
                reverse=True) if supports(name, v, system)), versions[0][0])
            python = system
        upgrade = (rng.randrange(days) if newer and version != newer
                   and supports(name, newer, python)
                   and rng.random() < 0.35 else None)
        return name, version, via, _pick(rng, USED), python, upgrade, newer

    def reports_on(self, day):
        return (self.joins <= day < self.leaves
                and (day - self.phase) % 7 == 0)

    def report(self, day, date):
        weeks = self.weeks_old + (day - self.joins) // 7 + 1
        age = ("1" if weeks <= 1 else "2-4" if weeks <= 4 else
               "5-24" if weeks <= 24 else "25+")
        format = 2 if day >= self.format_2_on else 1
        entries = []
        for name, version, via, used, python, upgrade, newer in \
                self.frameworks:
            if upgrade is not None and day >= upgrade:
                version = newer
            entries.append(report.Entry(name, version, via, 1, used,
                                        python if format == 2 else None))
        return report.serialise(report.Report(
            host_id=self.host_id, date=date.isoformat(),
            client="0.2.0" if format == 2 else "0.1.0", os=self.os,
            virt=self.virt, age=age, pythons=self.pythons,
            frameworks=tuple(sorted(entries, key=report.Entry.sort_key)),
            format=format))


class Fleet:
    """`size` hosts over `days` days, from `seed`: the same every time.

    For the demo each day's reports go through the receiver; tests that
    need only a store with a history use replay().
    """

    def __init__(self, size, days, seed=12):
        rng = random.Random(seed)
        self.days = days
        self.hosts = [Host(rng, days) for _ in range(size)]

    def day(self, day, first):
        """The date of `day` and the reports sent on it."""
        date = first + datetime.timedelta(days=day)
        return date, [h.report(day, date) for h in self.hosts
                      if h.reports_on(day)]

    def replay(self, store, spool_dir, output_dir, first, k=5,
               publish=False):
        """Each day's reports stored as received at its noon, expired and
        counted into the history as the daily units would; the last day
        also published if `publish`.  The last day's stats."""
        from pyweb_popcon.server.publish import aggregate
        from pyweb_popcon.server.admin import expire
        for day in range(self.days):
            date, reports = self.day(day, first)
            noon = int(datetime.datetime.combine(
                date, datetime.time(12), datetime.timezone.utc
            ).timestamp()) * 10**9
            store.put([(noon, f"r{day}-{i}", report.parse(r))
                       for i, r in enumerate(reports)])
            expire.run(store, spool_dir, 20, now_ns=noon)
            stats = aggregate.run(store, output_dir, k, date,
                                  publish=publish and day == self.days - 1)
        return stats
