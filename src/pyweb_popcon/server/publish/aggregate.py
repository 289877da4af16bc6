"""Publishing: stats.json, popcon-style text tables and an HTML page.

The store counts (in SQL), folding buckets under MIN_HOSTS hosts into
"other"; this module decides what may be shown.  `protect` withholds
figures until no count of 1 to MIN_HOSTS-1 hosts follows from adding or
subtracting the numbers published, the total included (the rule is
written out in pyweb-popcon-server(8)).  With NOISE_EPSILON every count
is noised first (see `noise`), and the same rule runs on the noised counts.
"""

import datetime
import json
import logging
import os
from fractions import Fraction

from pyweb_popcon import report
from pyweb_popcon.common import files
from pyweb_popcon.server.publish import noise
from pyweb_popcon.common.progress import bar
from pyweb_popcon.server import published
from pyweb_popcon.server.published import OTHER
from pyweb_popcon.server.settings import KEYS

EXPIRE_DAYS = int(KEYS["EXPIRE_DAYS"].default)

logger = logging.getLogger(__name__)


# -- the rule ------------------------------------------------------------------
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


def _each(shown, containers, k, least, partition):
    """Figures under `least`, and figures a container exceeds by a small
    count (that count is the hosts outside the figure)."""
    return [b for b, n in shown.items()
            if n < least or any(_small(c - n, k) for c in containers)]


def _rest(shown, containers, k, least, partition):
    """The smallest figure, while the container minus all that is shown is
    small (in a partition: the hosts left out, exactly; and with noise,
    while it is negative)."""
    rest = containers[0] - sum(shown.values())
    if _small(rest, k) or (partition and rest < 0):
        return [_smallest(shown)]
    return []


def _pair(shown, containers, k, least, partition):
    """The smaller of two figures whose sum exceeds the container by a
    small count (that count is the hosts in both, when the two cover it)."""
    if len(shown) == 2 and _small(sum(shown.values()) - containers[0], k):
        return [_smallest(shown)]
    return []


CHECKS = (_each, _rest, _pair)


def protect(figures, containers, k, least=None, partition=False):
    """The figures of one table that may be shown.

    `least` is the smallest figure shown (k unless noise asks for more).
    In a `partition` (each host in exactly one bucket: OS, virtualisation,
    age) what is withheld is shown as "other" when it is not small, as the
    total minus the rest.
    """
    shown = dict(figures)
    while True:
        for check in CHECKS:
            drop = check(shown, containers, k, least or k, partition)
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


def _single(counts):
    """{bucket: n} from {(bucket,): n}, the store's folded "other" left out
    (a partition's is the total minus what is shown)."""
    return {b: n for (b,), n in counts.items() if b != OTHER}


def statistics(counts, k, day, least=None, epsilon=None):
    """The stats.json document from Store.counts(): nothing while fewer
    than `k` hosts reported, and then only what `protect` lets through."""
    stats = {"generated": day, "hosts": None, "min_hosts": k,
             "noise_epsilon": epsilon, "frameworks": [], "os": [],
             "pythons": [], "virt": {}, "age": {}}
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
    pythons = {b: n for (b,), n in counts["pythons"].items()}
    stats.update({
        "hosts": total,
        "os": _ranked(protect(_single(counts["os"]), top, k, least, True),
                      "name"),
        "pythons": _ranked(protect(pythons, top, k, least), "version"),
        "virt": _fixed(protect(_single(counts["virt"]), top, k, least, True),
                       report.VIRTS),
        "age": _fixed(protect(_single(counts["age"]), top, k, least, True),
                      report.AGES),
    })
    return stats


def _noised(counts, epsilon):
    """`counts` with noise on every count, kept at least 0 and at most its
    container (a framework's figures its hosts, every figure the total)."""
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

    return {"hosts": total, "frameworks": frameworks,
            "via": per_framework("via"), "versions": per_framework("versions"),
            **{table: {key: add(n, total) for key, n in counts[table].items()}
               for table in ("os", "pythons", "virt", "age")}}


def publication(store, k, day, epsilon=""):
    """The stats.json document of `day`: exact, or with NOISE_EPSILON's
    noise on every count before anything is chosen for showing."""
    if not epsilon:
        return statistics(store.counts(k), k, day)
    epsilon = Fraction(epsilon)
    # Every bucket counted on its own (no "other" made from the data), so
    # that the noise covers all a host can change: see noise.sensitivity.
    return statistics(_noised(store.counts(1), epsilon), k, day,
                      least=max(k, noise.selection_threshold(epsilon)),
                      epsilon=float(epsilon))


def _figure(value):
    return "-" if value is None else str(value)


def by_inst(stats):
    """Frameworks ranked by hosts, as popcon's by_inst."""
    lines = [
        "#Format",
        "#",
        "#<rank> <name> <inst> <used> <deb> <pip> <venv> (<title>)",
        "#",
        "#<inst> is the number of hosts that have the framework installed;",
        "#<used> how many of them imported it in the last 30 days;",
        "#<deb>, <pip>, <venv> how many have it from a Debian package,",
        "#system-wide pip, or a virtual environment (a host may have several).",
        f"#Generated {stats['generated']} from {_figure(stats['hosts'])} "
        f"hosts. Counts under {stats['min_hosts']} are",
        '#folded into "other" or shown as "-".',
        "#",
        f"#{'rank':<5} {'name':<24} {'inst':>7} {'used':>7} {'deb':>7} "
        f"{'pip':>7} {'venv':>7} (title)",
        "#" + "-" * 72,
    ]
    for rank, f in enumerate(stats["frameworks"], 1):
        via = f["via"]
        lines.append(
            f"{rank:<6} {f['name']:<24} {f['hosts']:>7} "
            f"{_figure(f['used']):>7} {_figure(via.get('deb')):>7} "
            f"{_figure(via.get('pip')):>7} {_figure(via.get('venv')):>7} "
            f"({published.title(f['name'])})")
    lines += ["#" + "-" * 72, f"{'Total':<31} {_figure(stats['hosts']):>7}"]
    return "\n".join(lines) + "\n"


def by_version(stats):
    """Framework versions (major.minor) ranked by hosts."""
    rows = sorted(((v["hosts"], f["name"], v["version"])
                   for f in stats["frameworks"] for v in f["versions"]),
                  key=lambda r: (-r[0], r[1], r[2]))
    lines = [
        "#Format",
        "#",
        "#<rank> <name> <version> <inst>",
        "#",
        "#<version> is the major.minor series; <inst> the hosts that have it.",
        f"#Generated {stats['generated']} from {_figure(stats['hosts'])} "
        f"hosts. Counts under {stats['min_hosts']} are",
        '#folded into "other".',
        "#",
        f"#{'rank':<5} {'name':<24} {'version':<10} {'inst':>7}",
        "#" + "-" * 50,
    ]
    lines += [f"{rank:<6} {name:<24} {version:<10} {hosts:>7}"
              for rank, (hosts, name, version) in enumerate(rows, 1)]
    return "\n".join(lines) + "\n"


def run(store, output_dir, k, today=None, expire_days=EXPIRE_DAYS,
        publish=True, note="", epsilon=""):
    """Count, record the day's snapshot and (unless not `publish`) publish
    every output; the stats.

    Everything published is drawn from the day's stats and the kept
    snapshots: the charts, the page and the history files can show no
    number the day's tables do not.
    """
    day = (today or datetime.datetime.now(datetime.timezone.utc).date())
    with bar(4 if publish else 1, "step", "aggregate") as steps:
        steps.set_postfix_str("counting")
        stats = publication(store, k, day.isoformat(), epsilon)
        # A day whose total is withheld publishes nothing to keep.
        if stats["hosts"] is not None:
            store.record_history(stats["generated"], stats)
        steps.update()
        if publish:
            kept = _publish(store, output_dir, stats, expire_days, note,
                            steps)
    if publish:
        logger.info("published %s hosts, %d frameworks and %d days of "
                    "history in %s", _figure(stats["hosts"]),
                    len(stats["frameworks"]), len(kept), output_dir)
    return stats


def _publish(store, output_dir, stats, expire_days, note, steps):
    from pyweb_popcon.server.publish import charts, history, page
    kept = store.history()
    steps.set_postfix_str("charts")
    made = charts.render(stats, kept, published.title)
    steps.update()
    steps.set_postfix_str("page")
    outputs = {
        published.STATS: (json.dumps(stats, indent=2) + "\n").encode(),
        published.BY_INST: by_inst(stats).encode(),
        published.BY_VERSION: by_version(stats).encode(),
        published.HISTORY_JSON: history.document(kept),
        published.HISTORY_CSV: history.csv_text(kept),
        **{chart.name: chart.svg for chart in made.values()},
        published.PAGE: page.render(stats, kept, made, expire_days,
                                    note).encode(),
    }
    steps.update()
    steps.set_postfix_str("writing")
    for name, data in outputs.items():
        files.write_atomic(os.path.join(output_dir, name), data)
    _remove_stale_charts(output_dir, outputs)
    steps.update()
    return kept


def _remove_stale_charts(output_dir, outputs):
    """A chart that is no longer drawn (a framework left the lead) goes."""
    for name in os.listdir(output_dir):
        if name.endswith(".svg") and name not in outputs:
            os.unlink(os.path.join(output_dir, name))
