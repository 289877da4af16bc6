"""A simulated fleet: a seeded population of hosts, with the spreads a real
one might have, reporting weekly over a stretch of days.

For `make demo` and the page's tests.  Hosts join and leave during the
stretch (so expiry has work), some upgrade their frameworks (so version
shares move), and a few run rare frameworks and releases (so suppression
has work).  Every report is a valid format-1 report; nothing here is a
real machine, and the demo says so.
"""

import datetime
import random
import uuid

from pyweb_popcon import report

# name: (share of hosts that have it, [(version, weight)], newer version
# some hosts upgrade to during the stretch, or None)
FRAMEWORKS = {
    "django": (0.40, [("3.2.25", 15), ("4.2.16", 50), ("5.0.9", 20),
                      ("5.1.3", 15)], "5.1.3"),
    "flask": (0.30, [("2.2.5", 25), ("2.3.3", 20), ("3.0.3", 40),
                     ("3.1.0", 15)], "3.1.0"),
    "fastapi": (0.16, [("0.104.1", 25), ("0.110.3", 35), ("0.115.5", 40)],
                "0.115.5"),
    "djangorestframework": (0.14, [("3.14.0", 45), ("3.15.2", 55)], None),
    "aiohttp": (0.09, [("3.8.6", 40), ("3.9.5", 35), ("3.11.7", 25)], None),
    "tornado": (0.07, [("6.2", 50), ("6.4.1", 50)], None),
    "twisted": (0.04, [("22.4.0", 50), ("24.3.0", 50)], None),
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
        self.frameworks = []
        for name, (share, versions, newer) in FRAMEWORKS.items():
            # Newer hosts lean to FastAPI, older ones to Flask.
            lean = 1.5 if name == "fastapi" and self.joins else 1.0
            if rng.random() < share * lean:
                version = _pick(rng, versions)
                upgrade = (rng.randrange(days) if newer and version != newer
                           and rng.random() < 0.35 else None)
                self.frameworks.append((name, version, _pick(rng, VIAS),
                                        _pick(rng, USED), upgrade, newer))

    def reports_on(self, day):
        return (self.joins <= day < self.leaves
                and (day - self.phase) % 7 == 0)

    def report(self, day, date):
        weeks = self.weeks_old + (day - self.joins) // 7 + 1
        age = ("1" if weeks <= 1 else "2-4" if weeks <= 4 else
               "5-24" if weeks <= 24 else "25+")
        entries = []
        for name, version, via, used, upgrade, newer in self.frameworks:
            if upgrade is not None and day >= upgrade:
                version = newer
            entries.append(report.Entry(name, version, via, 1, used))
        return report.serialise(report.Report(
            host_id=self.host_id, date=date.isoformat(), client="0.1.0",
            os=self.os, virt=self.virt, age=age, pythons=self.pythons,
            frameworks=tuple(sorted(entries, key=report.Entry.sort_key))))


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
