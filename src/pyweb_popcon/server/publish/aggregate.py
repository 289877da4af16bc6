"""Publishing: stats.json, popcon-style text tables and an HTML page.

What may be shown is the publication rule's (`rule`): everything
published is drawn from its stats.json document.
"""

import datetime
import json
import logging
import os

from pyweb_popcon import report
from pyweb_popcon.common import files
from pyweb_popcon.server.progress import bar
from pyweb_popcon.server import published
from pyweb_popcon.server.publish import rule
from pyweb_popcon.server.settings import KEYS

EXPIRE_DAYS = int(KEYS["EXPIRE_DAYS"].default)
# by_inst.txt's columns of ways of installing: every one stats.json has.
VIA_COLUMNS = report.VIAS + (published.OTHER,)

logger = logging.getLogger(__name__)


def _figure(value):
    return "-" if value is None else str(value)


def by_inst(stats):
    """Frameworks ranked by hosts, as popcon's by_inst."""
    lines = [
        "#Format",
        "#",
        "#<rank> <name> <inst> <used> <deb> <pip> <venv> <conda> <user> "
        "<target> <other> (<title>)",
        "#",
        "#<inst> is the number of hosts that have the framework installed;",
        "#<used> how many of them imported it in the last 30 days;",
        "#<deb>, <pip>, <venv> how many have it from a Debian package,",
        "#system-wide pip, or a virtual environment, <conda> <user> <target>",
        "#from conda, pip --user or pip --target, <other> in the ways too",
        "#few to show on their own (a host may have several).",
        f"#Generated {stats['generated']} from {_figure(stats['hosts'])} "
        f"hosts. Counts under {stats['min_hosts']} are",
        '#folded into "other" or shown as "-".',
        "#",
        f"#{'rank':<5} {'name':<24} {'inst':>7} {'used':>7} "
        + "".join(f"{via:>7} " for via in VIA_COLUMNS) + "(title)",
        "#" + "-" * 96,
    ]
    for rank, f in enumerate(stats["frameworks"], 1):
        lines.append(
            f"{rank:<6} {f['name']:<24} {f['hosts']:>7} "
            f"{_figure(f['used']):>7} "
            + "".join(f"{_figure(f['via'].get(via)):>7} "
                      for via in VIA_COLUMNS)
            + f"({published.title(f['name'])})")
    lines += ["#" + "-" * 96, f"{'Total':<31} {_figure(stats['hosts']):>7}"]
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
        stats = rule.publication(store, k, day.isoformat(), epsilon)
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
