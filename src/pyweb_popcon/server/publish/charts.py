"""The page's charts, as SVG files made with matplotlib from published stats.

Charts are drawn only from what stats.json and the kept history publish,
so a chart can never show a count the tables fold away.  A chart with
nothing to draw is not made: the page says so in a sentence instead.
Text stays text (<text> elements, in the page's fonts), so a chart is a
few kilobytes, sharp at any size, and its words can be found and copied.
matplotlib is imported here, and only aggregate imports this module: the
other commands start without it.
"""

import datetime
import io
from typing import NamedTuple

import matplotlib

matplotlib.use("svg")  # no display, and no Agg rasteriser needed for SVG
matplotlib.rcParams.update({
    "svg.hashsalt": "pyweb-popcon",  # same stats, same bytes
    "svg.fonttype": "none",          # text as <text>, not glyph outlines
    "font.family": "sans-serif",
    "font.size": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "legend.frameon": False,
    "path.simplify": True,
})

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from pyweb_popcon.server import published  # noqa: E402
from pyweb_popcon.server.publish import history as hist  # noqa: E402
from pyweb_popcon.server.published import OTHER  # noqa: E402

WIDTH = 4.0           # inches: 384 px, barely scaled down at 375 px
# Okabe and Ito's palette, told apart also by people with colour
# blindness; grey is kept for "other".
COLOURS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9",
           "#d55e00", "#f0e442")
GREY = "#999999"
BLANK = "#e8e8e8"    # a share not shown (withheld, under MIN_HOSTS)
VIAS = (("deb", "Debian package"), ("pip", "system-wide pip"),
        ("venv", "virtual environment"), (OTHER, "other ways"))


class Chart(NamedTuple):
    name: str        # file name in OUTPUT_DIR
    alt: str         # what it shows, for the img element
    svg: bytes


def _svg(fig):
    out = io.BytesIO()
    fig.savefig(out, format="svg", bbox_inches="tight",
                metadata={"Date": None})
    plt.close(fig)
    return out.getvalue()


def _figure(height):
    # Constrained: the labels fit inside WIDTH, however long the names.
    return plt.subplots(figsize=(WIDTH, height), layout="constrained")


def _bars(count, per_bar=0.26, legend=0):
    """(fig, ax, legend axes or None): horizontal bars, the first on top;
    a legend of `legend` entries goes in a row below, not over the bars'
    labels."""
    height = 1.0 + per_bar * count
    if legend:
        fig, ax, under = _over_legend(height, legend, 1)
    else:
        (fig, ax), under = _figure(height), None
    ax.invert_yaxis()
    ax.tick_params(axis="y", length=0)
    ax.xaxis.grid(True, color="#dddddd")
    ax.set_axisbelow(True)
    return fig, ax, under


def _label_ends(ax, bars, values):
    for bar, value in zip(bars, values):
        ax.annotate(f"{value:,}", (bar.get_width(), bar.get_y()
                                    + bar.get_height() / 2),
                    xytext=(3, 0), textcoords="offset points",
                    va="center", fontsize=9)


def frameworks(stats, title):
    """Hosts per framework, and how many of them used it lately."""
    fws = stats["frameworks"]
    if not fws:
        return None
    names = [title(f["name"]) for f in fws]
    fig, ax, under = _bars(len(fws), legend=2)
    installed = ax.barh(names, [f["hosts"] for f in fws], color="#a6cee3",
                        label="installed")
    ax.barh(names, [f["used"] or 0 for f in fws], height=0.4,
            color=COLOURS[0], label="used in the last 30 days")
    _label_ends(ax, installed, [f["hosts"] for f in fws])
    ax.set_xlabel("hosts")
    ax.margins(x=0.15)
    _legend(ax, under, handlelength=1)
    return fig


def _over_legend(height, entries, ncol):
    """(fig, ax) with a row below the plot for a legend of `entries`.

    The legend gets axes of its own: constrained layout then sizes the
    plot around it, where a legend hung outside the plot would squeeze
    the plot to nothing.
    """
    rows = -(-entries // ncol)
    fig, (ax, under) = plt.subplots(
        2, 1, figsize=(WIDTH, height + 0.22 * rows), layout="constrained",
        height_ratios=(height, 0.22 * rows))
    under.axis("off")
    return fig, ax, under


def _legend(ax, under, **kw):
    handles, labels = ax.get_legend_handles_labels()
    under.legend(handles, labels, loc="upper left", borderaxespad=0, **kw)


def _dates(days):
    return [datetime.date.fromisoformat(d) for d in days]


def _time_axis(ax, days):
    span = (_dates(days)[-1] - _dates(days)[0]).days
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=3,
                                                      maxticks=6))
    ax.xaxis.set_major_formatter(mdates.DateFormatter(
        "%-d %b" if span < 300 else "%b %Y"))
    ax.yaxis.grid(True, color="#dddddd")
    ax.set_axisbelow(True)


def over_time(history, title):
    """All hosts and each leading framework per day; the rest summed."""
    if len(history) < 2:
        return None
    days, lines = hist.frameworks_over_time(history)
    fig, ax, under = _over_legend(2.8, len(lines), 2)
    colours = iter(COLOURS)
    for name, values in lines:
        ys = [float("nan") if v is None else v for v in values]
        if name == "hosts":
            ax.plot(_dates(days), ys, color="#444444", linestyle="--",
                    label="all hosts")
        else:
            ax.plot(_dates(days), ys, label=_line_label(name, title),
                    color=GREY if name == OTHER else next(colours))
    _time_axis(ax, days)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("hosts")
    _legend(ax, under, ncol=2, handlelength=1.5)
    return fig


def _line_label(name, title):
    return "other frameworks, summed" if name == OTHER else title(name)


def version_spread(stats, title):
    """Each leading framework's bar split into its version series."""
    leading = hist.leading(stats, with_versions=True)
    fws = [f for f in stats["frameworks"] if f["name"] in leading]
    if not fws:
        return None
    fig, ax, _ = _bars(len(fws), 0.4)
    names = [title(f["name"]) for f in fws]
    for y, f in enumerate(fws):
        total = sum(v["hosts"] for v in f["versions"])
        left = 0
        for i, v in enumerate(f["versions"]):
            share = 100 * v["hosts"] / total
            colour = GREY if v["version"] == OTHER else COLOURS[i % 7]
            ax.barh(y, share, left=left, color=colour, edgecolor="white")
            if share >= 12:
                ax.text(left + share / 2, y, v["version"], ha="center",
                        va="center", fontsize=9,
                        color="black" if colour in (COLOURS[6], GREY,
                                                    COLOURS[4], COLOURS[1])
                        else "white")
            left += share
    ax.set_yticks(range(len(names)), names)
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of its version counts")
    return fig


def version_trend(history, name, title):
    """One framework's version series as shares over time, stacked."""
    return _shares_over_time(*hist.version_shares(history, name),
                             "% of versions")


def python_trend(history, name, title):
    """One framework's Pythons as shares over time, stacked."""
    return _shares_over_time(*hist.python_shares(history, name),
                             "% by Python")


def _shares_over_time(days, lines, ylabel):
    """[(label, [% per day])] stacked over the days, "other" in grey."""
    if len(days) < 2:
        return None
    fig, ax, under = _over_legend(2.2, len(lines), 5)
    colours = [GREY if s == OTHER else COLOURS[i % 7]
               for i, (s, _) in enumerate(lines)]
    ax.stackplot(_dates(days), *[v for _, v in lines], colors=colours,
                 labels=["other" if s == OTHER else s for s, _ in lines],
                 edgecolor="white", linewidth=0.3)
    _time_axis(ax, days)
    ax.set_ylim(0, 100)
    ax.margins(x=0)
    ax.set_ylabel(ylabel)
    _legend(ax, under, ncol=5, handlelength=1, columnspacing=1)
    return fig


def series_by_python(stats, name, title):
    """One framework's version series, each bar split by the Python minors
    its hosts run it under, as shares of its hosts that name a Python;
    the first bar is all its series together.  A host with a series under
    two Pythons counts under both."""
    fp = hist.pythons_of(stats, name)
    if not fp or not fp["versions"]:
        return None
    bars = [("all", fp["pythons"], fp["covered"])]
    bars += [(v["version"], v["pythons"], v["covered"])
             for v in fp["versions"]]
    pythons = sorted({e["version"] for _, found, _ in bars for e in found
                      if e["version"] != OTHER}, key=hist._minor)
    legend = pythons + ([OTHER] if any(e["version"] == OTHER for _, found, _
                                       in bars for e in found) else [])
    if not legend:
        return None
    colour = {p: COLOURS[i % 7] for i, p in enumerate(pythons)}
    colour[OTHER] = GREY
    fig, ax, under = _bars(len(bars), 0.32,
                           legend=-(-(len(legend) + 1) // 4))
    for y, (_, found, covered) in enumerate(bars):
        counts = dict(hist.buckets(found))
        # Of the hosts that name a Python; what is withheld stays blank.
        total = max(covered, sum(counts.values()))
        left = 0
        for p in legend:
            share = 100 * counts.get(p, 0) / total
            ax.barh(y, share, left=left, color=colour[p], edgecolor="white",
                    label=p if y == 0 else None)
            left += share
        ax.barh(y, 100 - left, left=left, color=BLANK, edgecolor="white",
                label="not shown" if y == 0 else None)
    ax.set_yticks(range(len(bars)), [label for label, _, _ in bars])
    ax.set_xlim(0, 100)
    ax.set_xlabel("% by Python, of the hosts naming one")
    _legend(ax, under, ncol=min(len(legend) + 1, 4), handlelength=1,
            columnspacing=0.8)
    return fig


def installed_how(stats, title):
    """For each framework, its hosts by way of installing, stacked (a host
    with a framework in two ways counts in both)."""
    fws = stats["frameworks"]
    shown = [(via, label) for via, label in VIAS
             if any(f["via"].get(via) for f in fws)]
    if not shown:
        return None
    fig, ax, under = _bars(len(fws), legend=len(shown))
    names = [title(f["name"]) for f in fws]
    left = [0] * len(fws)
    for i, (via, label) in enumerate(shown):
        values = [f["via"].get(via, 0) for f in fws]
        ax.barh(names, values, left=left, label=label,
                color=GREY if via == OTHER else COLOURS[i])
        left = [a + b for a, b in zip(left, values)]
    ax.set_xlabel("hosts, once for each way")
    _legend(ax, under, handlelength=1)
    return fig


def render(stats, history, title):
    """{key: Chart} of every chart there is something to draw for."""
    file = published.CHARTS
    made = {
        "frameworks": (file["frameworks"], "Bar chart: hosts per framework, "
                       "and how many of them used it in the last 30 days",
                       frameworks(stats, title)),
        "over_time": (file["over_time"], "Line chart: hosts per day, all "
                      "and for each leading framework",
                      over_time(history, title)),
        "versions": (file["versions"], "Bar chart: the version series of "
                     "each leading framework, as shares",
                     version_spread(stats, title)),
        "via": (file["via"], "Bar chart: hosts with each framework from a "
                "Debian package, system-wide pip or a virtual environment",
                installed_how(stats, title)),
    }
    for name in hist.leading(stats, with_versions=True):
        made[f"trend-{name}"] = (
            published.trend_chart(name), f"Stacked area chart: the shares "
            f"of {title(name)}'s version series per day",
            version_trend(history, name, title))
        made[f"pythons-{name}"] = (
            published.python_chart(name), f"Bar chart: {title(name)}'s "
            "version series, each split by the Python minors its hosts run "
            "it under", series_by_python(stats, name, title))
        made[f"python-trend-{name}"] = (
            published.python_trend_chart(name), f"Stacked area chart: the "
            f"shares of the Pythons {title(name)} runs under, per day",
            python_trend(history, name, title))
    return {key: Chart(name, alt, _svg(fig))
            for key, (name, alt, fig) in made.items() if fig is not None}
