"""SPOOL_DIR, STATE_DIR, OUTPUT_DIR and the SQLite database moved where
the units may not write (their ReadWritePaths= are fixed), or OUTPUT_DIR
where the nginx site does not serve: the command refuses at once, naming
the setting to change, and touches nothing; it is not left to fail
half-way with EROFS.

A unit's ProtectSystem=strict is a read-only mount of all but its
ReadWritePaths=: here a read-only bind mount in a private mount namespace
stands for it."""

import os
import signal
import subprocess

import pytest

from pyweb_popcon.common.conffile import ConfigError
from pyweb_popcon.server import settings
from server_fixtures import ENV, PYTHON, Server, encryptor, make_report

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="a read-only mount: needs root")


def under_unit(srv, read_only, *args):
    """The command, with `read_only` mounted read-only, as a unit that
    leaves it out of ReadWritePaths= sees it; one that does not end in
    a minute (a receiver that started) is stopped, and fails the test."""
    proc = subprocess.Popen(
        ["unshare", "--mount", "sh", "-ec",
         f'mount --bind "{read_only}" "{read_only}"\n'
         f'mount -o remount,bind,ro "{read_only}"\n'
         'exec "$@"', "sh", PYTHON, "-m", "pyweb_popcon.server",
         "--config", srv.conf, *args],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError(f"{args} ran on with {read_only} read-only")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize("command, key, unit", [
    ("ingest", "STATE_DIR", "pyweb-popcon-ingest.service"),
    ("ingest", "SPOOL_DIR", "pyweb-popcon-ingest.service"),
    ("expire", "STATE_DIR", "pyweb-popcon-expire.service"),
    ("aggregate", "OUTPUT_DIR", "pyweb-popcon-aggregate.service"),
    ("serve", "SPOOL_DIR", "pyweb-popcon-receiver.service"),
    ("dns-backend", "SPOOL_DIR", "pyweb-popcon-dns.service")])
def test_a_directory_the_unit_cannot_write_is_refused(tmp_path, command,
                                                      key, unit):
    srv = Server(tmp_path, "sqlite", min_hosts=1)
    name = srv.drop(encryptor().encrypt(make_report()))
    read_only = {"STATE_DIR": srv.state, "SPOOL_DIR": srv.spool,
                 "OUTPUT_DIR": srv.output}[key]
    done = under_unit(srv, read_only, command)
    assert done.returncode == os.EX_CONFIG, done.stderr
    [line] = done.stderr.splitlines()
    assert f"{key}: {read_only} is on a read-only file system" in line
    assert f"systemctl edit {unit}: ReadWritePaths={read_only}" in line
    assert srv.incoming_files() == [name]


def test_the_units_named_run_the_commands():
    """Oracle: the shipped units' ExecStart= lines."""
    units = os.path.join(os.path.dirname(__file__), "..", "..", "..",
                         "systemd")
    for command, unit in settings.UNITS.items():
        with open(os.path.join(units, unit)) as f:
            assert f"ExecStart=/usr/bin/pyweb-popcon-server {command}\n" \
                in f.read(), unit


def test_outside_the_sandbox_nothing_is_refused(tmp_path):
    srv = Server(tmp_path, "sqlite", min_hosts=1)
    srv.drop(encryptor().encrypt(make_report()))
    srv.run("ingest")
    assert srv.incoming_files() == []


SITE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "etc",
                    "nginx", "sites-available", "pyweb-popcon-server")


def test_output_dir_must_be_what_the_enabled_nginx_site_serves(tmp_path):
    conf = settings.load(str(tmp_path / "none.conf"))
    settings.check_served(conf, SITE)           # the shipped site: served
    settings.check_served(conf, str(tmp_path / "not-enabled"))
    conf.values["OUTPUT_DIR"] = "/srv/popcon"
    with pytest.raises(ConfigError, match=r"set its root to /srv/popcon"):
        settings.check_served(conf, SITE)
