"""Reproducible: two builds of this tree, with another build path, umask
and clock (three days on, by faketime), give byte-identical .debs.

The .buildinfo files say when each build ran: that they differ is the
control that the clock really moved.  The second build is also nocheck
(DEB_BUILD_OPTIONS): skipping the unit tests must not change a byte, and
they do not run under a faked clock.
"""

import glob
import os
import shutil
import subprocess
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
DEBIAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def build(top, umask, clock=(), options=""):
    """The .deb and .buildinfo files of one build under `top`, with these
    DEB_BUILD_OPTIONS."""
    out = os.path.join(top, "out")
    subprocess.run(
        ["sh", "-c", f'umask {umask} && exec "$@"', "sh", *clock,
         os.path.join(HERE, "build-deb"), os.path.join(top, "build"), out],
        check=True, capture_output=True, stdin=subprocess.DEVNULL,
        timeout=1800, env=dict(os.environ, PATH=DEBIAN_PATH,
                               DEB_BUILD_OPTIONS=options))
    return {os.path.basename(p): p for p in glob.glob(f"{out}/*.deb")}, \
        glob.glob(f"{out}/*.buildinfo")


def build_date(buildinfo):
    with open(buildinfo) as f:
        return next(line for line in f if line.startswith("Build-Date:"))


def test_two_builds_give_the_same_debs():
    for tool in ("faketime", "dpkg-buildpackage"):
        if not shutil.which(tool, path=DEBIAN_PATH):
            pytest.skip(f"{tool} is not installed (make deps)")
    first = tempfile.mkdtemp(prefix="pyweb-popcon-repro.", dir="/var/tmp")
    second = tempfile.mkdtemp(prefix="pyweb-popcon-repro.", dir="/var/tmp")
    # The unit tests that run as nobody read the source too.
    for top in (first, second):
        os.chmod(top, 0o755)
    try:
        debs_a, info_a = build(first, "022")
        debs_b, info_b = build(os.path.join(second, "a", "longer", "path"),
                               "002", ("faketime", "-f", "+3d"), "nocheck")
        assert build_date(info_a[0]) != build_date(info_b[0])
        assert sorted(debs_a) == sorted(debs_b) and len(debs_a) == 3
        for name, path in debs_a.items():
            with open(path, "rb") as a, open(debs_b[name], "rb") as b:
                assert a.read() == b.read(), f"{name} differs"
    finally:
        shutil.rmtree(first)
        shutil.rmtree(second)
