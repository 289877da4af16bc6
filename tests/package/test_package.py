"""Debian's own checks on the packages built from this tree.

lintian --pedantic (failing on errors and warnings), systemd-analyze verify
and the exposure limits of systemd-analyze security (tests/package/lint),
and piuparts install and purge of each binary package in a bookworm chroot
(tests/package/piuparts).  `make lint` and `make piuparts` run the same
scripts by hand.
"""

import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
DEBIAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def check(script, debs, needs):
    missing = [t for t in needs if not shutil.which(t, path=DEBIAN_PATH)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (make deps)")
    done = subprocess.run([os.path.join(HERE, script), debs],
                          capture_output=True, text=True, timeout=1800,
                          stdin=subprocess.DEVNULL,
                          env=dict(os.environ, PATH=DEBIAN_PATH))
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_lintian_and_units(debs):
    if os.geteuid() != 0:
        pytest.skip("systemd-analyze verify runs in a mount namespace: root")
    out = check("lint", debs, ["lintian", "systemd-analyze", "unshare"])
    assert "verify: ok" in out
    # verify, seven services, and collect with the homes drop-in
    assert out.count(" ok\n") == 1 + 7 + 1


def test_piuparts(debs):
    if os.geteuid() != 0:
        pytest.skip("piuparts needs root")
    out = check("piuparts", debs, ["piuparts", "debootstrap"])
    assert out.count("PASS: All tests.") == 3
