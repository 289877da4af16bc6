"""The source builds lintian-clean where it is uploaded: trixie.

A debootstrap --variant=minbase tree of trixie with build-essential and
lintian is made once (a few minutes) and cached like tests/booted.py's
bookworm tree; tests/package/release-build builds the working tree's
source package in it and runs trixie's lintian --pedantic on the source
and the binaries.  The units must be where trixie's debhelper puts them,
/usr/lib/systemd/system: under /lib they are aliased-location errors.
"""

import os
import re
import shutil
import subprocess

import pytest

from booted import MIRROR, cached_tree, run

HERE = os.path.dirname(os.path.abspath(__file__))
DEBIAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
UNITS = {"pyweb-popcon.timer", "pyweb-popcon.service",
         "pyweb-popcon-collect.service", "pyweb-popcon-receiver.service",
         "pyweb-popcon-ingest.service", "pyweb-popcon-ingest.path",
         "pyweb-popcon-ingest.timer", "pyweb-popcon-expire.service",
         "pyweb-popcon-expire.timer", "pyweb-popcon-aggregate.service",
         "pyweb-popcon-aggregate.timer", "pyweb-popcon-dns.socket",
         "pyweb-popcon-dns.service",
         "pdns@pyweb-popcon.service.d/pyweb-popcon.conf"}


def _make_trixie(new):
    # apt-get, not debootstrap --include: that cannot order lintian's Perl.
    run("debootstrap", "--variant=minbase", "trixie", new, MIRROR,
        timeout=1200)
    run("chroot", new, "apt-get", "update", "-q", timeout=600)
    run("chroot", new, "apt-get", "install", "-q", "-y",
        "--no-install-recommends", "build-essential", "lintian",
        timeout=1200)


def test_builds_lintian_clean_on_trixie():
    if os.geteuid() != 0:
        pytest.skip("chroot and debootstrap need root")
    for tool in ("debootstrap", "unshare", "dpkg-parsechangelog"):
        if not shutil.which(tool, path=DEBIAN_PATH):
            pytest.skip(f"{tool} is not installed (make deps)")
    tree = cached_tree("trixie-build", _make_trixie)
    done = subprocess.run([os.path.join(HERE, "release-build"), tree],
                          capture_output=True, text=True, timeout=1800,
                          stdin=subprocess.DEVNULL,
                          env=dict(os.environ, PATH=DEBIAN_PATH))
    print(done.stdout, done.stderr)
    assert done.returncode == 0, done.stdout + done.stderr
    paths = re.findall(r" \./(\S+)$", done.stdout, re.M)
    under = "usr/lib/systemd/system/"
    assert {p[len(under):] for p in paths
            if p.startswith(under) and not p.endswith("/")} == UNITS
    assert not [p for p in paths if p.startswith("lib/")]
