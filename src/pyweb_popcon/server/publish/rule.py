"""The publication rule: what of the store's counts may be published.

Buckets under MIN_HOSTS hosts are folded into "other" (`folded`: the
store counts in SQL, this module chooses what folds).  `protect` then
withholds figures until no count of 1 to MIN_HOSTS-1 hosts follows from
adding or subtracting the numbers published, the total included (the
rule is written out in pyweb-popcon-server(8)).  With NOISE_EPSILON every
count is noised first (see `noise`), a bucket is shown only from the
noise's selection threshold up, and the same rule runs on the noised
counts.  A figure may have several containers (`protect`'s `beside`), and
a cross-table (a framework's version series by Python) is protected by
rows and by columns together (`cross`).
tests/integration/server/test_adversary.py attacks what it lets through.
"""

from fractions import Fraction

from pyweb_popcon import report
from pyweb_popcon.server.published import OTHER
from pyweb_popcon.server.publish import known, noise


# -- folding ------------------------------------------------------------------

def _fold(count, kind, k, among=None, by=None):
    """({key: hosts}, the keys folded): the buckets of `count(kind, among,
    by)` (see Store.counting), those under `k` hosts as one bucket
    "other" per group (the key but its last column), each host counted
    once.  The columns `by` must follow those of `among`.

    Counting every bucket first keeps the big scans on the covering
    indexes; the second count only reads the rows of small buckets.
    """
    raw = count(kind, among, by)
    small = [key for key, n in raw.items() if n < k]
    counts = {key: n for key, n in raw.items() if n >= k}
    if small:
        group = tuple(by or range(len(small[0])))[:-1]
        other = count(kind, [m + key for m in among or [()]
                             for key in small], group)
        counts.update({g + (OTHER,): n for g, n in other.items()})
    return counts, small


def folded(store, k):
    """Host counts for publishing, every bucket under `k` hosts folded
    into "other" (which may itself be under `k`: `protect` decides)."""
    with store.counting() as count:
        hosts = count("hosts").get((), 0)
        frameworks, small = _fold(count, "frameworks", k)
        used = count("used")
        via, _ = _fold(count, "via", k)
        if small:
            # The "other" framework: every small one together.
            used.update({(OTHER,): n for n in count("used", small,
                                                    ()).values()})
            other_via, _ = _fold(count, "via", k, small, (1,))
            via = {b: n for b, n in via.items() if b[:1] not in small}
            via.update({(OTHER,) + b: n for b, n in other_via.items()})
        return {
            "hosts": hosts,
            "frameworks": {name: (n, used.get((name,), 0))
                           for (name,), n in frameworks.items()},
            "via": via,
            "covered": count("covered"),
            "series_covered": count("series_covered"),
            **{kind: _fold(count, kind, k)[0]
               for kind in ("versions", "os", "pythons", "virt", "age",
                            "framework_pythons", "series_pythons")},
        }


# -- withholding --------------------------------------------------------------
#
# A table is a set of figures (host counts) within containers: the total,
# and for a framework's ways of install, versions and "used" figure also
# the framework's hosts (the innermost container comes first).  Each check
# returns the figures to withhold; `protect` repeats them until none does.

def _small(n, k):
    """A count of 1 to k-1 hosts."""
    return 0 < n < k


def _smallest(shown):
    # Ties go to "other" first, then by name, so the result is stable.
    return min(shown, key=lambda b: (shown[b], b != OTHER, str(b)))


def _each(shown, containers, k, least, partition, beside):
    """Figures under `least`, and figures a container (the table's, or one
    of its own `beside` it) exceeds by a small count (that count is the
    hosts outside the figure)."""
    return [b for b, n in shown.items()
            if n < least or any(_small(c - n, k) for c in
                                containers + beside.get(b, ()))]


def _rest(shown, containers, k, least, partition, beside):
    """The smallest figure, while the container minus all that is shown is
    small (in a partition: the hosts left out, exactly; and with noise,
    while it is negative)."""
    rest = containers[0] - sum(shown.values())
    if _small(rest, k) or (partition and rest < 0):
        return [_smallest(shown)]
    return []


def _pair(shown, containers, k, least, partition, beside):
    """The smaller of two figures whose sum exceeds the container by a
    small count (that count is the hosts in both, when the two cover it)."""
    if len(shown) == 2 and _small(sum(shown.values()) - containers[0], k):
        return [_smallest(shown)]
    return []


CHECKS = (_each, _rest, _pair)


def protect(figures, containers, k, least=None, partition=False,
            beside=None):
    """The figures of one table that may be shown.

    `least` is the smallest figure shown (k unless noise asks for more).
    In a `partition` (each host in exactly one bucket: OS, virtualisation,
    age) what is withheld is shown as "other" when it is not small, as the
    total minus the rest.  `beside` gives figures containers of their own
    as well as the table's: {bucket: (published counts that include it)}.
    """
    shown = dict(figures)
    while True:
        for check in CHECKS:
            drop = check(shown, containers, k, least or k, partition,
                         beside or {})
            if drop:
                break
        else:
            break
        for bucket in drop:
            del shown[bucket]
    if partition:
        rest = containers[0] - sum(shown.values())
        if shown and rest:
            shown[OTHER] = rest
    return shown


def cross(cells, rows, columns, k, least=None):
    """The cells {(row, column): hosts} of a cross-table that may be shown.

    Each row and each column is a table of its own, within `rows[row]`
    and `columns[column]` (containers, innermost first: the row's or
    column's total, then what includes it); a cell withheld in one is
    withheld in the other, until both agree.  Cells of "other" columns
    are in their rows only (an "other" of a row is not the column's).
    """
    shown = {c: n for c, n in cells.items() if c[0] in rows
             and (c[1] in columns or c[1] == OTHER)}
    while True:
        kept = {}
        for r, containers in rows.items():
            row = {c: n for (t, c), n in shown.items() if t == r}
            kept.update({(r, c): n for c, n in protect(
                row, containers, k, least,
                beside={c: columns[c] for c in row if c in columns}).items()})
        for c, containers in columns.items():
            column = {r: n for (r, t), n in kept.items() if t == c}
            for r in set(column) - set(protect(
                    column, containers, k, least,
                    beside={r: rows[r] for r in column})):
                del kept[r, c]
        if kept == shown:
            return shown
        shown = kept


# -- stats.json ----------------------------------------------------------------

def _ranked(buckets, label):
    """[{label: bucket, "hosts": n}], largest first and "other" last."""
    entries = [{label: b, "hosts": n} for b, n in buckets.items()]
    return sorted(entries, key=lambda e: (e[label] == OTHER, -e["hosts"],
                                          e[label]))


def _fixed(buckets, order):
    """{bucket: n} in the documented order, "other" last."""
    return {b: buckets[b] for b in order + (OTHER,) if b in buckets}


def _within(counts, name):
    """The buckets of one framework from {(name, bucket): n}."""
    return {b: n for (fw, b), n in counts.items() if fw == name}


def _single(counts, publishable=lambda bucket: True):
    """{bucket: n} from {(bucket,): n}, the folded "other" left out
    (a partition's is the total minus what is shown), and buckets that may
    not be published (they count in "other" so)."""
    return {b: n for (b,), n in counts.items()
            if b != OTHER and publishable(b)}


def statistics(counts, k, day, least=None, epsilon=None):
    """The stats.json document from `folded` counts: nothing while fewer
    than `k` hosts reported, and then only what `protect` lets through."""
    stats = {"generated": day, "hosts": None, "min_hosts": k,
             "noise_epsilon": epsilon, "frameworks": [], "os": [],
             "pythons": [], "virt": {}, "age": {}, "framework_pythons": []}
    total = counts["hosts"]
    if total < k:
        return stats
    top = (total,)
    named = protect({name: hosts for name, (hosts, _)
                     in counts["frameworks"].items()}, top, k, least)
    for name, hosts in named.items():
        inside = (hosts, total)
        used = protect({"used": counts["frameworks"][name][1]}, inside, k,
                       least)
        stats["frameworks"].append({
            "name": name,
            "hosts": hosts,
            "used": used.get("used"),
            "via": _fixed(protect(_within(counts["via"], name), inside, k,
                                  least), report.VIAS),
            "versions": _ranked(protect(_within(counts["versions"], name),
                                        inside, k, least), "version"),
        })
    stats["frameworks"].sort(key=lambda f: (f["name"] == OTHER, -f["hosts"],
                                            f["name"]))
    pythons = protect({b: n for (b,), n in counts["pythons"].items()}, top,
                      k, least)
    stats.update({
        "hosts": total,
        "os": _ranked(protect(_single(counts["os"], known.os_name), top, k,
                              least, True), "name"),
        "pythons": _ranked(pythons, "version"),
        "virt": _fixed(protect(_single(counts["virt"]), top, k, least, True),
                       report.VIRTS),
        "age": _fixed(protect(_single(counts["age"]), top, k, least, True),
                      report.AGES),
    })
    stats["framework_pythons"] = [
        table for f in stats["frameworks"] if f["name"] != OTHER
        for table in [_framework_pythons(counts, f, pythons, total, k, least)]
        if table]
    return stats


def _framework_pythons(counts, f, pythons, total, k, least):
    """One framework's Pythons, as far as its reports name them: the hosts
    that do ("covered"), those per Python minor, and per version series
    shown the hosts that name a Python and those per Python (the
    cross-table with its margins).  None when "covered" is withheld.

    Every figure has all the published counts that include it as
    containers: a Python's hosts of the framework are among all hosts
    with that Python (nearly always: the machine's Pythons a report lists
    are the system-wide ones; taken as always, to be safe), a series'
    covered hosts among the series' hosts.  An "other" is no other's
    part: what is small within a framework or a series may be large among
    all hosts.
    """
    name, hosts = f["name"], f["hosts"]
    covered = protect({"covered": counts["covered"].get((name,), 0)},
                      (hosts, total), k, least).get("covered")
    if covered is None:
        return None
    within = (covered, hosts, total)
    by_python = protect(_within(counts["framework_pythons"], name), within, k,
                        least, beside={p: (pythons[p],) for p in pythons
                                       if p != OTHER})
    series = {v["version"]: v["hosts"] for v in f["versions"]
              if v["version"] != OTHER}
    rows = protect({s: counts["series_covered"].get((name, s), 0)
                    for s in series}, within, k, least,
                   beside={s: (series[s],) for s in series})
    cells = cross(
        {(s, p): n for (fw, s, p), n in counts["series_pythons"].items()
         if fw == name},
        {s: (n, series[s]) + within for s, n in rows.items()},
        {p: (n,) + within + ((pythons[p],) if p in pythons else ())
         for p, n in by_python.items() if p != OTHER}, k, least)
    return {"name": name, "covered": covered,
            "pythons": _ranked(by_python, "version"),
            "versions": [{"version": row["version"], "covered": row["hosts"],
                          "pythons": _ranked({p: n for (s, p), n
                                              in cells.items()
                                              if s == row["version"]},
                                             "version")}
                         for row in _ranked(rows, "version")]}


def _noised(counts, epsilon):
    """`counts` with noise on every count, kept at least 0 and at most its
    containers (a framework's figures its hosts, every figure the total,
    and a figure by Python the covered hosts and Python it is part of)."""
    scale = noise.scale(epsilon)

    def add(n, top):
        return min(max(0, n + noise.discrete_laplace(scale)), top)

    total = add(counts["hosts"], float("inf"))
    frameworks = {}
    for name, (hosts, used) in counts["frameworks"].items():
        hosts = add(hosts, total)
        frameworks[name] = (hosts, add(used, hosts))

    def per_framework(table):
        return {key: add(n, frameworks[key[0]][0])
                for key, n in counts[table].items()}

    def within(table, containers):
        return {key: add(n, min(c.get(part(key), 0) for c, part
                                in containers))
                for key, n in counts[table].items()}

    versions = per_framework("versions")
    covered = per_framework("covered")
    by_python = within("framework_pythons", [(covered, lambda key: key[:1])])
    series_covered = within("series_covered", [
        (covered, lambda key: key[:1]), (versions, lambda key: key)])
    return {"hosts": total, "frameworks": frameworks,
            "via": per_framework("via"), "versions": versions,
            "covered": covered, "framework_pythons": by_python,
            "series_covered": series_covered,
            "series_pythons": within("series_pythons", [
                (series_covered, lambda key: key[:2]),
                (by_python, lambda key: key[::2])]),
            **{table: {key: add(n, total) for key, n in counts[table].items()}
               for table in ("os", "pythons", "virt", "age")}}


def publication(store, k, day, epsilon=""):
    """The stats.json document of `day`: exact, or with NOISE_EPSILON's
    noise on every count before anything is chosen for showing."""
    if not epsilon:
        return statistics(folded(store, k), k, day)
    epsilon = Fraction(epsilon)
    # Every bucket counted on its own (no "other" made from the data), so
    # that the noise covers all a host can change: see noise.sensitivity.
    return statistics(_noised(folded(store, 1), epsilon), k, day,
                      least=max(k, noise.selection_threshold(epsilon)),
                      epsilon=float(epsilon))
