"""What server commands run by hand create has the modes it has when the
units create it (UMask=0027), whatever the umask of the shell: the
database 0640, its WAL and SHM files too, the published files 0644."""

import os
import re
import sqlite3
import stat
import subprocess

import pytest

from server_fixtures import ENV, PYTHON, Server, encryptor, make_report

HERE = os.path.dirname(os.path.abspath(__file__))
UNITS = os.path.join(HERE, "..", "..", "..", "systemd")


def units_umask():
    """The UMask= of the server's oneshot units (one value for all)."""
    found = set()
    for unit in ("ingest", "expire", "aggregate"):
        with open(os.path.join(UNITS, f"pyweb-popcon-{unit}.service")) as f:
            found.update(re.findall(r"^UMask=(\d+)$", f.read(), re.M))
    [umask] = found
    return int(umask, 8)


def by_hand(srv, umask, *args):
    """The server command, started from a shell whose umask is `umask`."""
    done = subprocess.run([PYTHON, "-m", "pyweb_popcon.server", "--config",
                           srv.conf, *args], env=ENV, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL,
                          preexec_fn=lambda: os.umask(umask))
    assert done.returncode == 0, done.stderr


def modes(top):
    """{path under top: mode} of what the commands made (not the key the
    test copied in)."""
    found = {}
    for directory, dirs, names in os.walk(top):
        for name in dirs + names:
            path = os.path.join(directory, name)
            rel = os.path.relpath(path, top)
            if not rel.startswith("state/gnupg"):
                found[rel] = stat.S_IMODE(os.lstat(path).st_mode)
    return found


def story(top, umask):
    """ingest (one good, one bad submission), aggregate while a reader
    holds the database open (so its WAL and SHM files stay), expire."""
    srv = Server(top, "sqlite", min_hosts=1)
    os.rmdir(srv.output)                # aggregate makes it
    srv.drop(encryptor().encrypt(make_report()), name="good")
    srv.drop(b"not OpenPGP", name="bad")
    by_hand(srv, umask, "ingest")
    assert os.listdir(srv.quarantine)
    reader = sqlite3.connect(srv.database_url[len("sqlite://"):])
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM hosts").fetchall()
        by_hand(srv, umask, "aggregate")
        by_hand(srv, umask, "expire")
        made = modes(srv.top)
    finally:
        reader.close()
    return made


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_modes_do_not_depend_on_the_umask(tmp_path, umask):
    as_units = story(tmp_path / "unit", units_umask())
    by_shell = story(tmp_path / "shell", umask)
    assert by_shell == as_units
    db = "state/popcon.sqlite3"
    assert {as_units[db], as_units[db + "-wal"], as_units[db + "-shm"]} \
        == {0o640}
    assert as_units["www/stats.json"] == as_units["www/index.html"] == 0o644
    assert as_units["www"] == 0o750
