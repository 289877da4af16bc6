"""Building the source in a later release's tree (trixie, sid), as there.

A debootstrap --variant=minbase tree of the release with build-essential
and lintian is made once (a few minutes) and cached like tests/booted.py's
tree; tests/package/release-build builds the working tree's source package
in it (the Build-Depends installed there, the unit tests run under each of
the release's Pythons) and runs the release's lintian --pedantic.
"""

import os
import shutil
import subprocess

import pytest

from booted import (DEBIAN_PATH, MIRROR, accept_stale_release, cached_tree,
                    run)

RELEASE_BUILD = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                             "package", "release-build")


def build_tree(release):
    """The cached tree of a release to build in."""
    return cached_tree(f"{release}-build",
                       lambda new: _make_build_tree(release, new))


def _make_build_tree(release, new):
    # apt-get, not debootstrap --include: that cannot order lintian's Perl.
    run("debootstrap", "--variant=minbase", release, new, MIRROR,
        timeout=1200)
    accept_stale_release(new)
    run("chroot", new, "apt-get", "update", "-q", timeout=600)
    run("chroot", new, "apt-get", "install", "-q", "-y",
        "--no-install-recommends", "build-essential", "lintian",
        timeout=1200)


def release_build(release, out=None, unit_tests=True):
    """(the release's tree, release-build's output); the packages copied
    into out when given.  Skips where it cannot run."""
    if os.geteuid() != 0:
        pytest.skip("chroot and debootstrap need root")
    for tool in ("debootstrap", "unshare", "dpkg-parsechangelog"):
        if not shutil.which(tool, path=DEBIAN_PATH):
            pytest.skip(f"{tool} is not installed (make deps)")
    tree = build_tree(release)
    done = subprocess.run([RELEASE_BUILD, tree, *([out] if out else [])],
                          capture_output=True, text=True, timeout=1800,
                          stdin=subprocess.DEVNULL,
                          env=dict(os.environ, PATH=DEBIAN_PATH,
                                   DEB_BUILD_OPTIONS="" if unit_tests
                                   else "nocheck"))
    print(done.stdout, done.stderr)
    assert done.returncode == 0, done.stdout + done.stderr
    return tree, done.stdout
