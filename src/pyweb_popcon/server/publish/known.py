"""The operating systems the page and stats.json may name: a list the
project ships, not what clients send.

A report's OS vendor and release are free strings within a pattern, and a
handful of made-up host IDs (a forger can always inflate counts) would
otherwise choose text for the sponsors' page: "secretcorp 2026-02-30".
Anything not listed here is counted, as "other".  The other strings
published are fixed by the report format (frameworks from the catalogue,
ways of install, virtualisation, age) or are numbers by pattern (Python
versions 3.X, version series X.Y).  Add a release here when it ships.
"""

RELEASES = {
    "Debian": ("8", "9", "10", "11", "12", "13", "14", "15",
               # testing and unstable: their VERSION_CODENAME
               "trixie", "forky", "duke", "sid"),
    "Ubuntu": tuple(f"{year}.{month}" for year in range(16, 31)
                    for month in ("04", "10")),
    "Devuan": ("3", "4", "5", "6", "7",
               "beowulf", "chimaera", "daedalus", "excalibur", "freia",
               "ceres"),
    "Raspbian": ("10", "11", "12", "13"),
    "Kali": tuple(f"{year}.{quarter}" for year in range(2020, 2031)
                  for quarter in range(1, 5)) + ("kali-rolling",),
}

OS_NAMES = frozenset(f"{vendor} {release}"
                     for vendor, releases in RELEASES.items()
                     for release in releases)


def os_name(name):
    """Whether "VENDOR RELEASE" (an "os" bucket) may be published."""
    return name in OS_NAMES
