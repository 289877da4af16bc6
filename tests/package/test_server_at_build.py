"""A distribution builds the client for its server in one step.

The packages are built from this tree with SERVER_KEYS and SERVER_CONF
(debian/rules), unpacked into a fake machine, and the client found there
is run as installed: `status` names the server, `submit --dry-run` uses
the key and URL, and a real submission reaches the real receiver and is
ingested.  A build given a fingerprint that is not in the keys fails.
"""

import glob
import os
import shutil
import subprocess

import pytest

from fakemachine import CONSENT, FakeMachine
from server_fixtures import ENV, Server, running_receiver

HERE = os.path.dirname(os.path.abspath(__file__))
DEBIAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

pytestmark = pytest.mark.skipif(
    not shutil.which("dpkg-buildpackage", path=DEBIAN_PATH),
    reason="dpkg-buildpackage is not installed (make deps installs it)")


def build(tmp_path, keys, conf):
    out = tmp_path / "debs"
    done = subprocess.run(
        [os.path.join(HERE, "build-deb"), str(tmp_path / "build"), str(out)],
        # nocheck: the unit tests ran in the other builds (debs fixture,
        # release builds); some run as nobody, who cannot read tmp_path.
        env=dict(os.environ, PATH=DEBIAN_PATH, SERVER_KEYS=str(keys),
                 SERVER_CONF=str(conf), DEB_BUILD_OPTIONS="nocheck"),
        capture_output=True, text=True, timeout=1200,
        stdin=subprocess.DEVNULL)
    return done, out


def installed(machine, debs):
    """The client and the shared modules unpacked under the machine."""
    for package in ("pyweb-popcon", "python3-pyweb-popcon"):
        deb, = glob.glob(f"{debs}/{package}_*_all.deb")
        subprocess.run(["dpkg-deb", "-x", deb, machine.top], check=True)
    return machine


def client(machine, *args):
    env = {k: v for k, v in ENV.items() if not k.lower().endswith("_proxy")}
    env["PYTHONPATH"] = machine.path("/usr/lib/python3/dist-packages")
    return subprocess.run(["/usr/bin/python3", "-m", "pyweb_popcon.client",
                           "--root", machine.top, *args], env=env,
                          capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


def test_a_build_with_the_servers_key_sends_to_it(tmp_path):
    srv = Server(tmp_path / "srv", "sqlite")
    keys = tmp_path / "server-keys.asc"
    keys.write_bytes(srv.public_key)
    url = f"http://127.0.0.1:{srv.port}/submit"
    conf = tmp_path / "server.conf"
    conf.write_text(f'SUBMIT_URL="{url}"\n'
                    f'KEY_FINGERPRINTS="{srv.fingerprint}"\n')
    done, debs = build(tmp_path, keys, conf)
    assert done.returncode == 0, done.stdout + done.stderr

    machine = installed(FakeMachine(tmp_path / "machine"), debs)
    dropin = "/etc/pyweb-popcon.conf.d/00-server.conf"
    assert open(machine.path("/usr/share/pyweb-popcon/server-keys.asc"),
                "rb").read() == srv.public_key
    # The administrator said yes; nothing else is configured by hand.
    machine.config('PARTICIPATE="yes"\n' + CONSENT)
    status = client(machine, "status")
    assert f"Server: {url}, keys {srv.fingerprint} " \
        f"({machine.path(dropin)}:5)" in status.stdout, status.stdout
    dry = client(machine, "submit", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"encrypted to {srv.fingerprint}, to {url} directly." \
        in dry.stdout
    assert client(machine, "show").returncode == 0
    with running_receiver(srv, tmp_path / "receiver.log"):
        sent = client(machine, "submit", "--force")
        assert sent.returncode == 0, sent.stderr
    assert srv.run("ingest").stdout.startswith("1 ingested")

    # A fingerprint the keys do not hold is a failed build, not a client
    # that fails every week.
    conf.write_text(f'SUBMIT_URL="{url}"\nKEY_FINGERPRINTS="{"A" * 40}"\n')
    done, _ = build(tmp_path, keys, conf)
    assert done.returncode != 0
    assert f"{'A' * 40} is not a valid encryption key" in done.stderr
