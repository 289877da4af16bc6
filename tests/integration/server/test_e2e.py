"""The whole loop: fake client machines submit to the real receiver, then
ingest, aggregate; no address kept anywhere.  (The page in a browser:
test_page_in_chromium.)"""

import collections
import http.client
import json
import os
import socket
import subprocess

import pytest

from fakemachine import CONSENT, FakeMachine
from server_fixtures import (ENV, PYTHON, Server, encryptor, make_report,
                             running_receiver)

KEYRING = "/usr/share/pyweb-popcon/server-keys.asc"
CLIENT_ADDRESS = "127.0.0.2"     # loopback, but not the listening address
MACHINES = [
    [("Django", "4.2.11", "dist-info", "django")],
    [("Django", "4.2.11", "dist-info", "django"),
     ("Flask", "3.0.3", "dist-info", "flask")],
    [("Flask", "2.2.5", "dist-info", "flask")],
    [("fastapi", "0.110.0", "dist-info", "fastapi"),
     ("starlette", "0.36.3", "dist-info", "starlette")],
    [("Django", "5.0.6", "dist-info", "django")],
]


@pytest.fixture
def live(tmp_path):
    """A receiver (gunicorn) on 127.0.0.1 with MIN_HOSTS=1."""
    srv = Server(tmp_path / "srv", "sqlite", min_hosts=1)
    with running_receiver(srv, tmp_path / "receiver.log") as base:
        yield srv, base


def client_machine(top, i, dists, srv, base):
    machine = FakeMachine(top / f"m{i}")
    machine.venv("/srv/app/venv", dists)
    machine.file(KEYRING, srv.public_key.decode())
    machine.config(f'PARTICIPATE="yes"\nSUBMIT_URL="{base}/submit"\n'
                   f'KEY_FINGERPRINTS="{srv.fingerprint}"\n{CONSENT}')
    return machine


def pyweb_popcon(machine, *args):
    env = {k: v for k, v in ENV.items() if not k.lower().endswith("_proxy")}
    return subprocess.run([PYTHON, "-m", "pyweb_popcon.client", "--root",
                           machine.top, *args], env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=300)


def expected_stats(reports):
    frameworks = collections.defaultdict(set)
    versions = collections.defaultdict(set)
    for rep in reports:
        for e in rep["frameworks"]:
            frameworks[e["name"]].add(rep["host_id"])
            series = ".".join(e["version"].split(".")[:2])
            versions[e["name"], series].add(rep["host_id"])
    return ({n: len(h) for n, h in frameworks.items()},
            {k: len(h) for k, h in versions.items()})


def test_clients_submit_ingest_aggregate(live, tmp_path):
    srv, base = live
    machines = [client_machine(tmp_path, i, d, srv, base)
                for i, d in enumerate(MACHINES)]
    reports = []
    for machine in machines:
        sent = pyweb_popcon(machine, "submit", "--force")
        assert sent.returncode == 0, sent.stderr
        reports.append(json.loads(pyweb_popcon(machine, "show").stdout))
    assert len(srv.incoming_files()) == len(machines)
    assert srv.run("ingest").stdout.startswith(f"{len(machines)} ingested")
    srv.run("aggregate")
    with open(os.path.join(srv.output, "stats.json")) as f:
        stats = json.load(f)
    want_fw, want_versions = expected_stats(reports)
    assert stats["hosts"] == len(machines)
    assert {f["name"]: f["hosts"] for f in stats["frameworks"]} == want_fw
    assert {(f["name"], v["version"]): v["hosts"] for f in stats["frameworks"]
            for v in f["versions"]} == want_versions
    assert sum(stats["virt"].values()) == len(machines)
    table = srv.run("stats").stdout
    assert "django" in table
    assert table.splitlines()[-1].split() == ["Total", str(len(machines))]


def tree_bytes(*tops):
    for top in tops:
        for where, _, names in os.walk(top):
            for name in names:
                path = os.path.join(where, name)
                if os.path.isfile(path) and not os.path.islink(path):
                    with open(path, "rb") as f:
                        yield path, f.read()


def test_no_client_address_anywhere(live, tmp_path):
    srv, base = live
    port = srv.port
    enc = encryptor()
    logs = []

    def send(raw):
        with socket.create_connection(
                ("127.0.0.1", port), timeout=10,
                source_address=(CLIENT_ADDRESS, 0)) as s:
            s.sendall(raw)
            return s.recv(65536)
    for i in range(5):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                          source_address=(CLIENT_ADDRESS, 0))
        conn.request("POST", "/submit", enc.encrypt(make_report()),
                     {"Content-Type": "application/pgp-encrypted",
                      "X-Forwarded-For": "203.0.113.9"})
        assert conn.getresponse().status == 202
        conn.close()
    # Refusals and a malformed request: the paths that log errors.
    assert b" 400 " in send(b"POST /submit HTTP/1.1\r\nHost: x\r\nContent-"
                            b"Type: application/pgp-encrypted\r\nContent-"
                            b"Length: 3\r\n\r\nabc")
    send(b"GARBAGE\r\n\r\n")
    send(b"GET /" + b"x" * 9000 + b" HTTP/1.1\r\n\r\n")
    logs.append(srv.run("-v", "ingest"))
    logs.append(srv.run("-v", "aggregate"))
    logs.append(srv.run("-v", "expire"))
    found = [path for path, data in tree_bytes(srv.spool, srv.state,
                                               srv.output, srv.log)
             if b"127.0.0.2" in data or b"203.0.113.9" in data]
    found += [p.args for p in logs if "127.0.0.2" in p.stdout + p.stderr]
    assert found == []
    with open(srv.log) as f:
        assert "127.0.0.1" not in f.read()
