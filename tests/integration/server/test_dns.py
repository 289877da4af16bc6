"""Submission over DNS on real parts: the client (TRANSPORT="dns") resolves
through the C library with unbound as its only resolver (qname
minimisation, 0x20), unbound asks PowerDNS (the shipped configuration)
whose remote backend is the server's handler; ingest stores the reports.
The client's address reaches no file on the server side, nor does the
resolver's.  A proxy dropping the first try of a third of the chunks shows
the client's retries complete the submission."""

import json
import os
import re
import subprocess

import pytest

import dns_stack
from pyweb_popcon import dnswire
from pyweb_popcon.server.publish import rule
from fakemachine import CONSENT, FakeMachine
from server_fixtures import ENV, PYTHON, Server

pytestmark = pytest.mark.skipif(dns_stack.available() is not None,
                                reason=str(dns_stack.available()))

KEYRING = "/usr/share/pyweb-popcon/server-keys.asc"
DISTS = [("Django", "4.2.11", "dist-info", "django"),
         ("Flask", "3.0.3", "dist-info", "flask")]


def machine_for(top, srv, name="m"):
    machine = FakeMachine(top / name)
    machine.venv("/srv/app/venv", DISTS)
    machine.file(KEYRING, srv.public_key.decode())
    machine.config(f'PARTICIPATE="yes"\nTRANSPORT="dns"\n'
                   f'SUBMIT_ZONE="{dns_stack.ZONE}"\n'
                   f'KEY_FINGERPRINTS="{srv.fingerprint}"\n{CONSENT}')
    return machine


def client(stack, machine, *args):
    env = {k: v for k, v in ENV.items() if not k.lower().endswith("_proxy")}
    return subprocess.run(
        stack.client_argv([PYTHON, "-m", "pyweb_popcon.client", "-v",
                           "--root", machine.top, *args]),
        env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
        timeout=300)


@pytest.fixture
def srv(tmp_path):
    return Server(tmp_path / "srv", "sqlite", min_hosts=1)


def test_submit_and_forget_over_dns(srv, tmp_path):
    machine = machine_for(tmp_path, srv)
    with dns_stack.running(srv, ENV, top=tmp_path / "dns") as stack:
        sent = client(stack, machine, "submit", "--force")
        assert sent.returncode == 0, sent.stderr
        assert f"report sent to the DNS zone {dns_stack.ZONE}" in sent.stderr
        report = json.loads(client(stack, machine, "show").stdout)
        assert len(srv.incoming_files()) == 1
        assert srv.run("ingest").stdout.startswith("1 ingested")
        [(host,)] = srv.store().query("SELECT host_id FROM hosts")
        assert host == report["host_id"]
        forgot = client(stack, machine, "forget")
        assert forgot.returncode == 0, forgot.stderr
        assert ", 1 forgotten," in srv.run("ingest").stdout
        with srv.store() as store:     # a tombstone, no report
            assert rule.folded(store, 1)["hosts"] == 0
        dropped, seen = stack.proxy.dropped, stack.proxy.seen
    assert dropped == []
    # unbound did minimise its query names (RFC 9156) and randomise their
    # case (0x20), and the server answered all the same.
    chunks = [dnswire.parse(n, dns_stack.ZONE) for n in seen]
    assert dnswire.PARTIAL in chunks
    assert any(isinstance(c, dnswire.Chunk) for c in chunks)
    assert any(n != n.lower() for n in seen)
    # Nowhere on the server side: not the client's address, not even the
    # resolver's, nor the proxy's, the only one PowerDNS is sent from (the
    # test's own config file names 127.0.0.1 as LISTEN).
    seen = (dns_stack.CLIENT, stack.unbound_addr, stack.outgoing,
            stack.proxy_addr)
    assert holding(stack, srv, seen) == []
    paths = list(stack.files())
    assert srv.conf in paths and os.path.join(stack.top, "pdns.log") in paths


def holding(stack, srv, addresses):
    """(file, address) for each of `addresses` in a file of the server
    side (not as part of a longer address), its config file aside."""
    found = []
    for path in stack.files():
        if path == srv.conf:
            continue
        with open(path, "rb") as f:
            data = f.read()
        for address in addresses:
            if re.search(rb"(^|[^0-9.])" + re.escape(address.encode())
                         + rb"([^0-9]|$)", data):
                found.append((path, address))
    return found


def test_the_address_search_finds_a_planted_one(srv, tmp_path):
    """The control: the proxy's address, planted in the handler's log and
    in the spool, is found there, and a longer address it begins is not
    taken for it."""
    with dns_stack.running(srv, ENV, top=tmp_path / "dns") as stack:
        with open(os.path.join(stack.top, "handler.log"), "a") as f:
            f.write(f"planted {stack.proxy_addr}:5300\n")
        with open(os.path.join(srv.incoming, "planted"), "w") as f:
            f.write(f"from {stack.proxy_addr}0\n")
        found = holding(stack, srv, (stack.proxy_addr,))
    assert found == [(os.path.join(stack.top, "handler.log"),
                      stack.proxy_addr)]


def test_lost_chunks_are_sent_again(srv, tmp_path):
    machine = machine_for(tmp_path, srv)
    drop = dns_stack.drop_first_tries(1 / 3)
    with dns_stack.running(srv, ENV, drop, top=tmp_path / "dns") as stack:
        sent = client(stack, machine, "submit", "--force")
        dropped = list(stack.proxy.dropped)
    assert sent.returncode == 0, sent.stderr
    assert dropped, "the proxy dropped nothing: the test shows nothing"
    assert "chunks needed more than one query" in sent.stderr
    assert len(srv.incoming_files()) == 1
    assert srv.run("ingest").stdout.startswith("1 ingested")


def test_a_full_spool_exit_75(srv, tmp_path):
    """The server answers "busy" (its spool is full): the client stops at
    once with 75 and keeps the report for the next run.  (A server that
    never answers: tests/unit/client/test_dns.py.)"""
    machine = machine_for(tmp_path, srv)
    srv.drop(b"waiting for ingest")
    with open(srv.conf, "a") as f:
        f.write('SPOOL_MAX_FILES="1"\n')
    with dns_stack.running(srv, ENV, top=tmp_path / "dns") as stack:
        sent = client(stack, machine, "submit", "--force")
    assert sent.returncode == 75, sent.stderr
    assert "the server cannot take submissions now (it answered: busy)" \
        in sent.stderr
    assert "the report stays in the outbox" in sent.stderr
    assert len(srv.incoming_files()) == 1
