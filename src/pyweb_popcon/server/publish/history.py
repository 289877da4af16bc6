"""The kept daily history, as published files and as series over time.

Every day aggregate keeps that day's stats.json as published (small counts
already suppressed), and everything here is drawn from those snapshots
alone: history.json and history.csv carry exactly the published numbers,
and the trend charts can show nothing the day's tables did not.  In
history.csv a cell of a framework's cross-table of version series by
Python is the bucket "series/Python" (5.2/3.12) of table series_pythons.
"""

import csv
import io
import json

from pyweb_popcon.server.published import OTHER

LEADING = 5          # frameworks drawn as lines of their own
LEADING_SERIES = 4   # version series drawn for each leading framework
# Keys of a snapshot that are not tables of host counts (of all hosts).
NOT_TABLES = ("generated", "hosts", "min_hosts", "frameworks",
              "framework_pythons")


def buckets(table):
    """[(label, hosts)] of a published table, in its order: a {bucket: n}
    object or a [{"name" or "version": bucket, "hosts": n}] list."""
    if isinstance(table, dict):
        return [(str(b), n) for b, n in table.items() if type(n) is int]
    found = []
    for entry in table if isinstance(table, list) else ():
        labels = [v for k, v in entry.items()
                  if k != "hosts" and isinstance(v, str)]
        if type(entry.get("hosts")) is int and len(labels) == 1:
            found.append((labels[0], entry["hosts"]))
    return found


def tables(stats):
    """{key: [(label, hosts)]} for the snapshot's tables other than the
    frameworks, in the snapshot's order (whatever tables it has)."""
    return {key: buckets(value) for key, value in stats.items()
            if key not in NOT_TABLES and buckets(value)}


def rows(stats):
    """Every published number of one snapshot as (table, framework,
    bucket, hosts) rows."""
    out = [("hosts", "", "", stats["hosts"])]
    for f in stats["frameworks"]:
        out.append(("frameworks", f["name"], "", f["hosts"]))
        if f.get("used") is not None:
            out.append(("used", f["name"], "", f["used"]))
        out += [("via", f["name"], b, n) for b, n in buckets(f["via"])]
        out += [("versions", f["name"], b, n)
                for b, n in buckets(f["versions"])]
    for key, found in tables(stats).items():
        out += [(key, "", b, n) for b, n in found]
    for fp in stats.get("framework_pythons", ()):
        name = fp["name"]
        out.append(("covered", name, "", fp["covered"]))
        out += [("framework_pythons", name, b, n)
                for b, n in buckets(fp["pythons"])]
        for v in fp["versions"]:
            out.append(("series_covered", name, v["version"], v["covered"]))
            # The series and the Python in one bucket: 5.2/3.12.
            out += [("series_pythons", name, f"{v['version']}/{b}", n)
                    for b, n in buckets(v["pythons"])]
    return out


def document(history):
    """history.json: every daily snapshot, oldest first."""
    return (json.dumps({"days": [stats for _, stats in history]},
                       separators=(",", ":")) + "\n").encode()


def csv_text(history):
    """history.csv: one row per published number per day, ready for a
    spreadsheet's pivot table."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("day", "table", "framework", "bucket", "hosts"))
    for day, stats in history:
        writer.writerows((day,) + row for row in rows(stats))
    return out.getvalue().encode()


def leading(stats, n=LEADING, with_versions=False):
    """The names of the `n` frameworks with most hosts, "other" aside."""
    return [f["name"] for f in stats["frameworks"]
            if f["name"] != OTHER and (f["versions"] or not with_versions)
            ][:n]


def frameworks_over_time(history):
    """(days, [(name, [hosts or None])]): all hosts, each leading
    framework of the last day, and the rest summed as OTHER.

    None is a day the framework was not published (under MIN_HOSTS, or
    not yet reporting): a gap in a line, never a zero.
    """
    days = [day for day, _ in history]
    names = leading(history[-1][1]) if history else []
    lines = [("hosts", [s["hosts"] for _, s in history])]
    lines += [(name, [_hosts(s, name) for _, s in history])
              for name in names]
    rest = [sum(f["hosts"] for f in s["frameworks"]
                if f["name"] not in names) or None for _, s in history]
    if any(rest):
        lines.append((OTHER, rest))
    return days, lines


def _hosts(stats, name):
    for f in stats["frameworks"]:
        if f["name"] == name:
            return f["hosts"]
    return None


def version_shares(history, name):
    """(days, [(series, [% or None])]) of one framework: its leading
    series on the last day, the rest as OTHER; each day's shares add up
    to 100 (of the published version counts: a host with two series
    counts in both)."""
    last = _versions(history[-1][1], name) if history else {}
    series = [v for v in sorted(last, key=lambda v: (v == OTHER, -last[v]))
              if v != OTHER][:LEADING_SERIES]
    return _shares(history, lambda stats: _versions(stats, name), series)


def pythons_of(stats, name):
    """One framework's table by Python in a snapshot, or None."""
    for fp in stats.get("framework_pythons", ()):
        if fp["name"] == name:
            return fp
    return None


def python_shares(history, name):
    """(days, [(Python, [% or None])]) of one framework: its Pythons of
    the last day in version order, the rest as OTHER; each day's shares
    of the published counts by Python add up to 100 (a host with the
    framework under two Pythons counts under both)."""
    last = pythons_of(history[-1][1], name) if history else None
    shown = sorted((p for p, _ in buckets(last["pythons"]) if p != OTHER),
                   key=_minor) if last else []

    def counts(stats):
        fp = pythons_of(stats, name)
        return dict(buckets(fp["pythons"])) if fp else {}
    return _shares(history, counts, shown)


def _shares(history, counts_of, shown):
    """(days, [(bucket, [%])]): each day's shares of `counts_of(stats)`
    for the buckets `shown`, the rest as OTHER (left out when always 0);
    days with no count are left out."""
    days, lines = [], {b: [] for b in shown + [OTHER]}
    for day, stats in history:
        counts = counts_of(stats)
        total = sum(counts.values())
        if not total:
            continue
        days.append(day)
        for b in shown:
            lines[b].append(100 * counts.get(b, 0) / total)
        lines[OTHER].append(100 * sum(n for b, n in counts.items()
                                      if b not in shown) / total)
    if not any(lines[OTHER]):
        del lines[OTHER]
    return days, list(lines.items())


def _minor(python):
    """3.9 before 3.12."""
    return tuple(int(part) for part in python.split("."))


def _versions(stats, name):
    for f in stats["frameworks"]:
        if f["name"] == name:
            return dict(buckets(f["versions"]))
    return {}
