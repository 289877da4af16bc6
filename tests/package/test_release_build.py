"""The source builds lintian-clean where it is uploaded: trixie and sid.

tests/releases.py builds the working tree's source package in a cached
tree of the release, which runs the unit tests under each of the release's
Pythons (3.13 on trixie; 3.14 and 3.15 on sid today), and runs the release's
lintian --pedantic on the source and the binaries.  The units must be
where the release's debhelper puts them, /usr/lib/systemd/system: under
/lib they are aliased-location errors.  trixie's build is in `make test`,
sid's in `make test-all`.
"""

import re

import pytest

from booted import run
from releases import release_build

UNITS = {"pyweb-popcon.timer", "pyweb-popcon.service",
         "pyweb-popcon-collect.service", "pyweb-popcon-receiver.service",
         "pyweb-popcon-ingest.service", "pyweb-popcon-ingest.path",
         "pyweb-popcon-ingest.timer", "pyweb-popcon-expire.service",
         "pyweb-popcon-expire.timer", "pyweb-popcon-aggregate.service",
         "pyweb-popcon-aggregate.timer", "pyweb-popcon-dns.socket",
         "pyweb-popcon-dns.service",
         "pdns@pyweb-popcon.service.d/pyweb-popcon.conf"}


@pytest.mark.timeout(2400)       # sid: the unit tests under three Pythons
@pytest.mark.parametrize("release", [
    "trixie", pytest.param("sid", marks=pytest.mark.all_releases)])
def test_builds_lintian_clean(release):
    tree, out = release_build(release)
    # The unit tests ran, and passed, under each Python the release
    # supports (py3versions, as pybuild asks it).
    pythons = run("chroot", tree, "py3versions", "-sv").stdout.split()
    assert sorted(re.findall(r"^platform linux -- Python (\d+\.\d+)", out,
                             re.M)) == sorted(pythons)
    summaries = re.findall(r"^=+ (.*) in [0-9.]+s", out, re.M)
    assert len(summaries) == len(pythons)
    assert all(re.match(r"\d+ passed", s) and "failed" not in s
               for s in summaries), summaries
    paths = re.findall(r" \./(\S+)$", out, re.M)
    under = "usr/lib/systemd/system/"
    assert {p[len(under):] for p in paths
            if p.startswith(under) and not p.endswith("/")} == UNITS
    assert not [p for p in paths if p.startswith("lib/")]
