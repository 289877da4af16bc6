"""Every quarantine reason judged right by GnuPG 2.2 (Debian 12, this
host) and GnuPG 2.4 (Debian 13 and unstable), issue 21 point 2.

The same hostile submissions (hostile_openpgp.py), made once, go through
the real decrypting and judging (keyholder/gpg.py) twice: here, and in a
trixie tree (debootstrap, cached like the booted tests' tree) whose own
python3 runs this source with its own gpg 2.4, gpg-agent and prlimit, as
on a trixie server.  Only the tree's gpg (a wrapper first in PATH) would
not do: gpg starts gpg-agent by its installed path, this host's 2.2.
"""

import json
import os
import shlex
import shutil
import textwrap

import pytest

from booted import DEBIAN_PATH, MIRROR, TOP, cached_tree, run
from hostile_openpgp import OPENPGP
from server_fixtures import encryptor, make_report, server_key

RELEASE = "trixie"
# prlimit is util-linux's (essential); packaging is what report.py needs.
INCLUDE = "gnupg,python3,python3-packaging"
# Where the tree sees the submissions and this source.
WORK, SRC = "/srv/work", "/srv/src"
JUDGE = textwrap.dedent("""\
    import json, subprocess, sys
    from pyweb_popcon.server.keyholder import gpg
    home, paths = sys.argv[1], sys.argv[2:]
    try:
        outcomes = gpg.decrypt_batch(home, paths, 300)
    finally:
        gpg.stop_agent(home)
    version = subprocess.run(["gpg", "--version"], capture_output=True,
                             text=True, check=True).stdout.split()[2]
    print(json.dumps([version, [o.reason or "decrypted" for o in outcomes]]))
    """)


def why_not():
    if os.geteuid() != 0:
        return "a trixie tree needs root (debootstrap, chroot, mounts)"
    if not shutil.which("debootstrap", path=DEBIAN_PATH):
        return "debootstrap is not installed (make deps installs it)"
    return None


def _make_tree(new):
    run("debootstrap", "--variant=minbase", f"--include={INCLUDE}", RELEASE,
        new, MIRROR, timeout=1200)
    for point in (WORK, SRC):
        os.makedirs(new + point)


@pytest.fixture(scope="module")
def submissions(tmp_path_factory):
    """(directory holding the server's key home and every kind of hostile
    submission with a good one, [(kind, expected reason)])."""
    top = tmp_path_factory.mktemp("gnupg-versions")
    shutil.copytree(server_key()[0], top / "gnupg",
                    ignore=shutil.ignore_patterns("S.*"))
    kinds = [("good", "decrypted", lambda: encryptor().encrypt(
        make_report()))]
    kinds += [(kind, reason, make) for kind, (reason, make) in
              sorted(OPENPGP.items())]
    for kind, _, make in kinds:
        (top / kind).write_bytes(make())
    return top, [(kind, reason) for kind, reason, _ in kinds]


def on_host(top, kinds):
    """[gpg's version, [judged reason]] with this host's gpg."""
    return json.loads(run(
        "env", f"PYTHONPATH={TOP}/src", "/usr/bin/python3", "-c", JUDGE,
        str(top / "gnupg"), *(str(top / k) for k, _ in kinds)).stdout)


def in_tree(top, kinds):
    """The same with the trixie tree's python3 and gpg: in a mount
    namespace of its own, the submissions and the source bound into the
    tree, and a /proc and a tmpfs /dev/shm (for the plaintexts) there,
    all gone with the namespace."""
    tree = cached_tree(f"{RELEASE}-gnupg", _make_tree)
    top, src, tree = (shlex.quote(str(p)) for p in (top, f"{TOP}/src",
                                                     tree))
    mounts = (f"mount --bind {top} {tree}{WORK} && "
              f"mount --bind {src} {tree}{SRC} && "
              f"mount -t proc proc {tree}/proc && "
              f"mount -t tmpfs tmpfs {tree}/dev/shm && "
              f'exec chroot {tree} "$@"')
    return json.loads(run(
        "unshare", "--mount", "--propagation", "private", "--",
        "sh", "-ec", mounts, "sh", "env", "-i", f"PATH={DEBIAN_PATH}",
        f"PYTHONPATH={SRC}", "LC_ALL=C.UTF-8", "python3", "-c", JUDGE,
        f"{WORK}/gnupg", *(f"{WORK}/{k}" for k, _ in kinds)).stdout)


@pytest.mark.parametrize("gnupg,judged_by", [
    pytest.param("2.2", on_host, id="gpg-2.2-debian-12-host"),
    pytest.param("2.4", in_tree, id="gpg-2.4-trixie-tree",
                 marks=pytest.mark.skipif(why_not() is not None,
                                          reason=str(why_not())))])
def test_every_reason_with_this_gnupg(submissions, gnupg, judged_by):
    top, kinds = submissions
    version, judged = judged_by(top, kinds)
    table = "\n".join(f"{kind:24} {expected:14} {got}" for (
        kind, expected), got in zip(kinds, judged))
    print(f"gpg {version}: kind, expected, judged\n{table}")
    assert version.startswith(gnupg + "."), f"gpg {version}, not {gnupg}"
    assert judged == [reason for _, reason in kinds], table
