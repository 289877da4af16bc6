"""Fixtures for the client transport tests: a participating fake machine
with a throw-away server key, the CLI run in this process, fast limits."""

import os
import time
from dataclasses import dataclass

import pytest

from fakemachine import CONSENT
from front import self_signed
from pyweb_popcon.client import cli, delivery, hostid, state
from transport_servers import SubmitServer, free_port

KEYRING = "/usr/share/pyweb-popcon/server-keys.asc"
# Production limits scaled down so that every fault ends in seconds.
FAST = delivery.Limits(connect=0.5, read=0.5, attempt=1.5,
                       backoff=(0.1, 0.2), run=4.0,
                       tor=("127.0.0.1", free_port()))
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy",
                   "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
                   "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "DO_NOT_TRACK")


@dataclass
class Run:
    code: int
    out: str
    err: str
    seconds: float


class Client:
    """pyweb-popcon on a fake machine, run in-process as main() is."""

    def __init__(self, machine, keys, capsys):
        self.machine, self.keys, self.capsys = machine, keys, capsys
        machine.venv("/srv/app/venv", [("Flask", "3.0.3", "dist-info",
                                        "flask")])
        with open(keys.public) as f:
            machine.file(KEYRING, f.read())

    def configure(self, url, extra="", fingerprints=None):
        if fingerprints is None:
            fingerprints = self.keys.fingerprint
        self.machine.config(f'PARTICIPATE="yes"\nSUBMIT_URL="{url}"\n'
                            f'KEY_FINGERPRINTS="{fingerprints}"\n{extra}{CONSENT}')

    def run(self, *args):
        self.capsys.readouterr()
        start = time.monotonic()
        code = cli.main([*args, "--root", self.machine.top])
        seconds = time.monotonic() - start
        out, err = self.capsys.readouterr()
        return Run(code, out, err, seconds)

    @property
    def root(self):
        return self.machine.root

    def pending(self):
        return state.pending(self.root)

    def state(self):
        return state.load(self.root)

    def host_id(self):
        return hostid.read(self.root).host_id


@pytest.fixture
def fast(monkeypatch):
    """Fast limits, and no proxy or CA settings from the environment."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(delivery, "LIMITS", FAST)
    return FAST


@pytest.fixture
def server():
    s = SubmitServer().start()
    yield s
    s.stop()


@pytest.fixture
def client(machine, gpg_keys, capsys, fast):
    return Client(machine, gpg_keys, capsys)


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    """A self-signed certificate for popcon.test, localhost, 127.0.0.1:
    (certificate file, key file)."""
    return self_signed(str(tmp_path_factory.mktemp("tls")), "popcon.test")


@pytest.fixture
def tls_server(certificate):
    s = SubmitServer(tls=certificate).start()
    yield s
    s.stop()


def files_under(top):
    """Every file under top with its content and mode."""
    found = {}
    for directory, _, names in os.walk(top):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                found[path] = (f.read(), os.stat(path).st_mode)
    return found
