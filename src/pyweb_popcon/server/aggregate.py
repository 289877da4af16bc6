"""Publishing: stats.json, popcon-style text tables and an HTML page.

The store counts (in SQL); this module decides what may be shown.  Every
named bucket under MIN_HOSTS hosts has already been folded into "other"
by the store; here an "other" bucket, or a "used" figure, that is itself
under MIN_HOSTS is left out too, so no published number is ever a count
of fewer than MIN_HOSTS hosts.
"""

import datetime
import json
import logging
import os

from pyweb_popcon import catalogue, report
from pyweb_popcon.common import files
from pyweb_popcon.server.progress import bar
from pyweb_popcon.server.settings import KEYS
from pyweb_popcon.server.store import OTHER

EXPIRE_DAYS = int(KEYS["EXPIRE_DAYS"].default)

logger = logging.getLogger(__name__)


def _ranked(buckets, k, label):
    """[{label: bucket, "hosts": n}] for buckets of at least `k` hosts,
    largest first and "other" last."""
    entries = [{label: b, "hosts": n} for b, n in buckets.items() if n >= k]
    return sorted(entries, key=lambda e: (e[label] == OTHER, -e["hosts"],
                                          e[label]))


def _fixed(buckets, k, order):
    """{bucket: n} in the documented order, "other" last, none under `k`."""
    return {b: buckets[b] for b in order + (OTHER,)
            if buckets.get(b, 0) >= k}


def _within(counts, name):
    """The buckets of one framework from {(name, bucket): n}."""
    return {b: n for (fw, b), n in counts.items() if fw == name}


def statistics(counts, k, day):
    """The stats.json document from Store.counts(k)."""
    frameworks = []
    for name, (hosts, used) in counts["frameworks"].items():
        if hosts < k:
            continue
        frameworks.append({
            "name": name,
            "hosts": hosts,
            "used": used if used >= k else None,
            "via": _fixed(_within(counts["via"], name), k, report.VIAS),
            "versions": [] if name == OTHER else _ranked(
                _within(counts["versions"], name), k, "version"),
        })
    frameworks.sort(key=lambda f: (f["name"] == OTHER, -f["hosts"],
                                   f["name"]))
    return {
        "generated": day,
        "hosts": counts["hosts"],
        "min_hosts": k,
        "frameworks": frameworks,
        "os": _ranked({b: n for (b,), n in counts["os"].items()}, k, "name"),
        "pythons": _ranked({b: n for (b,), n in counts["pythons"].items()},
                           k, "version"),
        "virt": _fixed({b: n for (b,), n in counts["virt"].items()}, k,
                       report.VIRTS),
        "age": _fixed({b: n for (b,), n in counts["age"].items()}, k,
                      report.AGES),
    }


def title(name):
    fw = catalogue.frameworks().get(name)
    return fw.title if fw else "Other frameworks"


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
        f"#Generated {stats['generated']} from {stats['hosts']} hosts. "
        f"Counts under {stats['min_hosts']} are",
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
            f"({title(f['name'])})")
    lines += ["#" + "-" * 72, f"{'Total':<31} {stats['hosts']:>7}"]
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
        f"#Generated {stats['generated']} from {stats['hosts']} hosts. "
        f"Counts under {stats['min_hosts']} are",
        '#folded into "other".',
        "#",
        f"#{'rank':<5} {'name':<24} {'version':<10} {'inst':>7}",
        "#" + "-" * 50,
    ]
    lines += [f"{rank:<6} {name:<24} {version:<10} {hosts:>7}"
              for rank, (hosts, name, version) in enumerate(rows, 1)]
    return "\n".join(lines) + "\n"


def run(store, output_dir, k, today=None, expire_days=EXPIRE_DAYS,
        publish=True, note=""):
    """Count, record the day's snapshot and (unless not `publish`) publish
    every output; the stats.

    Everything published is drawn from the day's stats and the kept
    snapshots: the charts, the page and the history files can show no
    number the day's tables do not.
    """
    day = (today or datetime.datetime.now(datetime.timezone.utc).date())
    with bar(4 if publish else 1, "step", "aggregate") as steps:
        steps.set_postfix_str("counting")
        stats = statistics(store.counts(k), k, day.isoformat())
        store.record_history(stats["generated"], stats)
        steps.update()
        if publish:
            kept = _publish(store, output_dir, stats, expire_days, note,
                            steps)
    if publish:
        logger.info("published %d hosts, %d frameworks and the history "
                    "since %s in %s", stats["hosts"],
                    len(stats["frameworks"]), kept[0][0], output_dir)
    return stats


def _publish(store, output_dir, stats, expire_days, note, steps):
    from pyweb_popcon.server import charts, history, page
    kept = store.history()
    steps.set_postfix_str("charts")
    made = charts.render(stats, kept, title)
    steps.update()
    steps.set_postfix_str("page")
    outputs = {
        "stats.json": (json.dumps(stats, indent=2) + "\n").encode(),
        "by_inst.txt": by_inst(stats).encode(),
        "by_version.txt": by_version(stats).encode(),
        "history.json": history.document(kept),
        "history.csv": history.csv_text(kept),
        **{chart.name: chart.svg for chart in made.values()},
        "index.html": page.render(stats, kept, made, expire_days,
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
