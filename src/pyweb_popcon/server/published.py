"""What is published, by name: the files aggregate writes in OUTPUT_DIR,
which of them the receiver serves, and the words for what the counts do
not name.  One list for publishing, the receiver and the nginx site's
test; it imports nothing of the server, so the receiver may read it.
"""

import re

from pyweb_popcon import catalogue

STATS = "stats.json"
BY_INST = "by_inst.txt"
BY_VERSION = "by_version.txt"
HISTORY_JSON = "history.json"
HISTORY_CSV = "history.csv"
PAGE = "index.html"
FILES = (STATS, BY_INST, BY_VERSION, HISTORY_JSON, HISTORY_CSV, PAGE)
# The charts, by what they show (see charts.render).
CHARTS = {"frameworks": "frameworks.svg", "over_time": "history.svg",
          "versions": "versions.svg", "via": "via.svg"}


def trend_chart(name):
    """The chart of framework `name`'s version series over time."""
    return f"versions-{name}.svg"


def python_chart(name):
    """The chart of framework `name`'s version series by Python."""
    return f"pythons-{name}.svg"


def python_trend_chart(name):
    """The chart of framework `name`'s Pythons over time."""
    return f"pythons-over-time-{name}.svg"


# What the receiver serves, by extension; etc/nginx/sites-available/
# pyweb-popcon-server repeats PATTERN.  Nothing else under OUTPUT_DIR is.
MEDIA = {"html": "text/html; charset=utf-8",
         "json": "application/json",
         "txt": "text/plain; charset=utf-8",
         "svg": "image/svg+xml",
         "csv": "text/csv; charset=utf-8"}
PATTERN = re.compile(r"[a-z0-9_][a-z0-9_-]*\.(" + "|".join(MEDIA) + ")")

# The bucket of all that is too small to show on its own.
OTHER = "other"


def title(name):
    """A framework's name as the page and the text tables say it."""
    fw = catalogue.frameworks().get(name)
    return fw.title if fw else "Other frameworks"
