"""The page's charts, as SVG files made with matplotlib from published stats.

Charts are drawn only from what stats.json publishes, so a chart can never
show a count the tables fold away.  matplotlib is imported here, and only
aggregate imports this module: the other commands start without it.
"""

import datetime
import io

import matplotlib

matplotlib.use("svg")  # no display, and no Agg rasteriser needed for SVG
matplotlib.rcParams.update({
    "svg.hashsalt": "pyweb-popcon",  # same stats, same bytes
    "svg.fonttype": "path",          # no font needed where it is viewed
    "font.size": 9,
})

import matplotlib.pyplot as plt  # noqa: E402

LEADING = 6           # frameworks whose version spread is drawn
COLOURS = ("#3b6ea5", "#e08a2c", "#5a9e4b", "#b84a4a", "#8066a8", "#7a7a7a")


def _svg(fig):
    out = io.BytesIO()
    fig.savefig(out, format="svg", bbox_inches="tight",
                metadata={"Date": None})
    plt.close(fig)
    return out.getvalue()


def _bars(names, height=0.35):
    fig, ax = plt.subplots(figsize=(7, 1 + height * max(len(names), 1)))
    ax.invert_yaxis()
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def hosts_per_framework(stats, title):
    fws = stats["frameworks"]
    names = [title(f["name"]) for f in fws]
    fig, ax = _bars(names)
    ax.barh(names, [f["hosts"] for f in fws], color=COLOURS[0])
    ax.set_xlabel("hosts")
    return fig


def version_spread(stats, title):
    """Each leading framework's bar split into its version series."""
    fws = [f for f in stats["frameworks"] if f["versions"]][:LEADING]
    names = [title(f["name"]) for f in fws]
    fig, ax = _bars(names, 0.5)
    for y, f in enumerate(fws):
        left = 0
        for i, v in enumerate(f["versions"]):
            share = 100 * v["hosts"] / f["hosts"]
            ax.barh(y, share, left=left, color=COLOURS[i % len(COLOURS)],
                    edgecolor="white")
            if share >= 8:
                ax.text(left + share / 2, y, v["version"], ha="center",
                        va="center", color="white")
            left += share
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("% of the framework's hosts (a host may have several)")
    return fig


def installed_how(stats, title):
    """deb / pip / venv hosts side by side for each framework."""
    fws = stats["frameworks"]
    names = [title(f["name"]) for f in fws]
    fig, ax = _bars(names, 0.6)
    width = 0.27
    for i, via in enumerate(("deb", "pip", "venv")):
        ax.barh([y + (i - 1) * width for y in range(len(fws))],
                [f["via"].get(via, 0) for f in fws], height=width,
                color=COLOURS[i], label=via)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("hosts")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return fig


def installed_used(stats, title):
    fws = stats["frameworks"]
    names = [title(f["name"]) for f in fws]
    fig, ax = _bars(names, 0.45)
    ys = range(len(fws))
    ax.barh([y - 0.2 for y in ys], [f["hosts"] for f in fws], height=0.4,
            color=COLOURS[0], label="installed")
    ax.barh([y + 0.2 for y in ys], [f["used"] or 0 for f in fws], height=0.4,
            color=COLOURS[1], label="used in the last 30 days")
    ax.set_yticks(ys, names)
    ax.set_xlabel("hosts")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return fig


def over_time(history):
    """Hosts, and frameworks with at least MIN_HOSTS hosts, per day."""
    days = [datetime.date.fromisoformat(day) for day, _ in history]
    fig, hosts_ax = plt.subplots(figsize=(7, 3))
    hosts_ax.plot(days, [s["hosts"] for _, s in history], marker="o",
                  color=COLOURS[0])
    hosts_ax.set_ylabel("hosts", color=COLOURS[0])
    fw_ax = hosts_ax.twinx()
    fw_ax.plot(days, [sum(f["name"] != "other" for f in s["frameworks"])
                      for _, s in history], marker="s", color=COLOURS[1])
    fw_ax.set_ylabel("frameworks shown", color=COLOURS[1])
    fig.autofmt_xdate()
    return fig


def render(stats, history, title):
    """[(file name, caption, SVG bytes)] in the order the page shows them."""
    return [
        ("frameworks.svg", "Hosts per framework",
         _svg(hosts_per_framework(stats, title))),
        ("versions.svg", "Version spread of the leading frameworks",
         _svg(version_spread(stats, title))),
        ("via.svg", "Installed from a Debian package, system-wide pip, "
                    "or a virtual environment",
         _svg(installed_how(stats, title))),
        ("used.svg", "Installed and used",
         _svg(installed_used(stats, title))),
        ("history.svg", "Hosts and frameworks over time",
         _svg(over_time(history))),
    ]
