"""Root never acts through a link planted where the ingest user writes.

STATE_DIR and SPOOL_DIR belong to pyweb-popcon-ingest, the account that
feeds hostile input to gpg: it can put links anywhere in them.  Each
command root may run by hand (keygen and keygen --rotate, expire with its
key retirement, requeue, status) is run here as root, on a tree that
belongs to that user, with links to a directory of root's files (a
stand-in for /etc) that must come through untouched.

The server's system users exist only in a private mount namespace, where
/etc/passwd and /etc/group are copies that name them: the test machine's
own accounts stay as they are.
"""

import os
import shutil
import subprocess
import tempfile

import pytest

from server_fixtures import ENV, PYTHON, server_key
from planted import precious_tree, snapshot

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="root's commands by hand: needs root")

INGEST_ID, RECEIVER_ID = 64123, 64124


@pytest.fixture
def installed(tmp_path):
    """(run, top): a server tree owned by the ingest user, and `run`,
    which runs a server command as root where the server's users exist."""
    etc = tmp_path / "fake-etc"
    etc.mkdir()
    with open("/etc/passwd") as f:
        passwd = f.read()
    with open("/etc/group") as f:
        group = f.read()
    (etc / "passwd").write_text(
        passwd + f"pyweb-popcon-ingest:x:{INGEST_ID}:{INGEST_ID}::/:"
        "/usr/sbin/nologin\n"
        f"pyweb-popcon-receiver:x:{RECEIVER_ID}:{RECEIVER_ID}::/:"
        "/usr/sbin/nologin\n")
    (etc / "group").write_text(
        group + f"pyweb-popcon-ingest:x:{INGEST_ID}:\n"
        f"pyweb-popcon-receiver:x:{RECEIVER_ID}:\n")
    # Not under tmp_path, which only root may enter.
    top = tempfile.mkdtemp(prefix="ppc-planted-")
    os.chmod(top, 0o755)
    for sub in ("state", "spool/incoming", "spool/tmp", "spool/quarantine",
                "state/www"):
        os.makedirs(os.path.join(top, sub))
    conf = os.path.join(top, "server.conf")
    with open(conf, "w") as f:
        f.write(f'STATE_DIR="{top}/state"\nSPOOL_DIR="{top}/spool"\n'
                f'OUTPUT_DIR="{top}/state/www"\n')
    give_to_ingest(top)

    def run(*args):
        return subprocess.run(
            ["unshare", "--mount", "sh", "-ec",
             f'mount --bind {etc}/passwd /etc/passwd\n'
             f'mount --bind {etc}/group /etc/group\n'
             'exec "$@"', "sh", PYTHON, "-m", "pyweb_popcon.server",
             "--config", conf, *args],
            env=ENV, capture_output=True, text=True, stdin=subprocess.DEVNULL,
            cwd=str(tmp_path))
    yield run, top
    shutil.rmtree(top)


def give_to_ingest(top):
    """As tmpfiles.d does at installation: the tree is the ingest user's."""
    for directory, dirs, names in os.walk(top):
        for name in [directory] + [os.path.join(directory, n)
                                   for n in dirs + names]:
            if name != top:
                os.lchown(name, INGEST_ID, INGEST_ID)


def plant(top, where, target):
    link = os.path.join(top, where)
    if os.path.isdir(link) and not os.path.islink(link):
        shutil.rmtree(link)
    elif os.path.lexists(link):
        os.unlink(link)
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.symlink(target, link)
    give_to_ingest(top)


def clean_end(done):
    """Done, or refused with a message (no traceback)."""
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in (0, 1, os.EX_UNAVAILABLE, os.EX_TEMPFAIL), \
        done.stderr


def with_key(top):
    """The test key in STATE_DIR/gnupg, the ingest user's."""
    shutil.copytree(server_key()[0], os.path.join(top, "state/gnupg"),
                    ignore=shutil.ignore_patterns("S.*"))
    give_to_ingest(top)


# (link planted, relative to the tree; what in the precious tree it
# points to)
KEYGEN = {
    "gnupg": ("state/gnupg", ""),
    "private keys": ("state/gnupg/private-keys-v1.d", "sub"),
    "public keys": ("state/gnupg/pubring.kbx", "passwd"),
    "trust": ("state/gnupg/trustdb.gpg", "shadow"),
    "lock": ("spool/ingest.lock", "shadow"),
}


@pytest.mark.parametrize("planted", KEYGEN)
@pytest.mark.parametrize("rotate", [False, True], ids=["keygen", "rotate"])
def test_keygen_leaves_what_a_link_points_to_alone(installed, tmp_path,
                                                   planted, rotate):
    run, top = installed
    precious = precious_tree(str(tmp_path / "etc"))
    before = snapshot(precious)
    if rotate:
        with_key(top)
    where, target = KEYGEN[planted]
    plant(top, where, os.path.join(precious, target))
    done = run("keygen", *(["--rotate"] if rotate else []),
               "--export", str(tmp_path / "keys.asc"))
    clean_end(done)
    assert snapshot(precious) == before, done.stderr
    if not done.returncode:
        # The export is where root said, root's.
        assert os.stat(tmp_path / "keys.asc").st_uid == 0
        for directory, dirs, names in os.walk(os.path.join(top, "state")):
            for name in dirs + names:
                assert os.lstat(os.path.join(directory, name)).st_uid \
                    == INGEST_ID, (directory, name)


# Links for the commands that read or change the spool and the state.
OTHERS = {
    "gnupg": ("state/gnupg", ""),
    "quarantine": ("spool/quarantine", ""),
    "quarantined entry": ("spool/quarantine/x", "passwd"),
    "runs": ("state/runs", ""),
    "run record": ("state/runs/expire.json", "state.json"),
    "incoming": ("spool/incoming", ""),
    "database": ("state/popcon.sqlite3", "shadow"),
}


@pytest.mark.parametrize("planted", OTHERS)
def test_expire_requeue_status_leave_it_alone(installed, tmp_path, planted):
    run, top = installed
    precious = precious_tree(str(tmp_path / "etc"))
    with_key(top)
    before = snapshot(precious)
    where, target = OTHERS[planted]
    plant(top, where, os.path.join(precious, target))
    if planted == "quarantined entry":
        with open(os.path.join(top, "spool/quarantine/x.reason"), "w") as f:
            f.write("not-openpgp: test\n")
        give_to_ingest(top)
    for command in (["expire", "--days", "1"], ["requeue"], ["status"]):
        done = run(*command)
        clean_end(done)
        assert snapshot(precious) == before, (command, done.stderr)
