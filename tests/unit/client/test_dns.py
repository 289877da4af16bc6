"""The DNS transport's exchange (client.dns) against the server's own
reassembly (dnsreceive), joined in-process by a lookup that loses,
delays and re-cases names as a bad path to a resolver may.  The real
resolvers and PowerDNS are in tests/integration/server/test_dns.py."""

import base64
import os
import random
import socket
import threading
import time

import pytest

from pyweb_popcon import dnswire
from pyweb_popcon.client import delivery, dns
from pyweb_popcon.client.delivery import REJECTED, SENT, TEMPORARY
from pyweb_popcon.server.intake import dnsreceive, limits
from pyweb_popcon.server.spool import Spool

ZONE = "d.example"
FAST = delivery.Limits(run=20, dns_wait=0.5, dns_window=8, dns_tries=6,
                       dns_backoff=0.01)


def message(size, seed=0):
    """Bytes that pass for OpenPGP encrypted data (a new-format
    public-key encrypted session key packet first)."""
    return b"\xc1" + random.Random(seed).randbytes(size - 1)


def armored(data):
    text = base64.b64encode(data).decode()
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    return ("-----BEGIN PGP MESSAGE-----\n\n" + "\n".join(lines)
            + "\n=abcd\n-----END PGP MESSAGE-----\n").encode()


class Server:
    """dnsreceive's Zone over a spool in `tmp_path`."""

    def __init__(self, tmp_path, timeout=600, max_pending=100,
                 max_bytes=1 << 20):
        self.spool = str(tmp_path / "spool")
        for d in (Spool.INCOMING, Spool.TMP):
            os.makedirs(os.path.join(self.spool, d))
        spool = Spool(self.spool)
        gauge = limits.Gauge(spool, 1000, 1 << 30, 0)
        self.reassembly = dnsreceive.Reassembly(
            spool, gauge, timeout, max_pending, max_bytes)
        self.zone = dnsreceive.Zone(ZONE, ["ns1.example"], self.reassembly)
        self.asked = []

    def lookup(self, name):
        """A resolver's answer: the server's A records for `name`, the
        name sent on in random case (0x20)."""
        self.asked.append(name)
        sent = "".join(random.choice((c.lower(), c.upper())) for c in name)
        records = self.zone.lookup("A", sent + ".")
        if not records:
            raise socket.gaierror(socket.EAI_NODATA, "No address")
        return {r["content"] for r in records}

    def stored(self):
        incoming = os.path.join(self.spool, Spool.INCOMING)
        out = []
        for name in os.listdir(incoming):
            with open(os.path.join(incoming, name), "rb") as f:
                out.append(f.read())
        return out


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setattr(delivery, "LIMITS", FAST)
    return Server(tmp_path)


def deliver(data):
    return dns.deliver(armored(data), {"SUBMIT_ZONE": ZONE})


def test_a_message_arrives_whole(server, monkeypatch):
    monkeypatch.setattr(dns, "lookup", server.lookup)
    data = message(3000)
    outcome = deliver(data)
    assert outcome.result == SENT, outcome.reason
    assert server.stored() == [data]
    assert len(server.asked) == len(dnswire.split(data, ZONE))
    # The receipt is the message ID, random: no host ID in any name.
    message_id = dnswire.decode(outcome.receipt)
    assert len(message_id) == dnswire.MESSAGE_ID_BYTES
    assert all(dnswire.parse(n, ZONE).message_id == message_id
               for n in server.asked)


def test_lost_and_late_answers_are_asked_again(server, monkeypatch):
    """A third of the lookups fail at once (SERVFAIL, no answer), a tenth
    hang past dns_wait: every chunk is still acknowledged, each retry
    under a new name."""
    rng = random.Random(7)

    def lossy(name):
        roll = rng.random()
        if roll < 0.33:
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure")
        if roll < 0.43:
            time.sleep(FAST.dns_wait * 3)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure")
        return server.lookup(name)

    monkeypatch.setattr(dns, "lookup", lossy)
    data = message(4000, seed=1)
    chunks = len(dnswire.split(data, ZONE))
    outcome = deliver(data)
    assert outcome.result == SENT, outcome.reason
    assert server.stored() == [data]
    assert len(server.asked) > chunks * 0.5     # what reached the server
    names = [n.lower() for n in server.asked]
    assert len(set(names)) == len(names)        # never the same name twice


def test_a_server_that_never_answers_ends_in_time(server, monkeypatch):
    def silent(name):
        time.sleep(60)

    monkeypatch.setattr(delivery, "LIMITS", delivery.Limits(
        run=2, dns_wait=0.3, dns_tries=100, dns_backoff=0.01))
    monkeypatch.setattr(dns, "lookup", silent)
    started = time.monotonic()
    data = message(500)
    outcome = deliver(data)
    assert time.monotonic() - started < 3
    assert outcome.result == TEMPORARY
    count = len(dnswire.split(data, ZONE))
    assert f"0 of {count} chunks acknowledged within 2 s" in outcome.reason
    assert "no answer within 0.3 s" in outcome.reason
    assert threading.active_count() < 200


def test_a_chunk_with_no_acknowledgement_after_its_tries(server,
                                                         monkeypatch):
    def nxdomain(name):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(dns, "lookup", nxdomain)
    outcome = deliver(message(100))
    assert outcome.result == TEMPORARY
    assert "no acknowledgement after 6 tries: no such name (NXDOMAIN)" \
        in outcome.reason


def test_a_second_round_has_tries_of_its_own(server, monkeypatch):
    """A server that acknowledges every chunk but never completes the
    message (it lost them): the whole message is sent again, once, even
    when a chunk used up all but one of its tries in the first round."""
    failures = {"left": FAST.dns_tries - 1}

    def forgetful(name):
        if dnswire.parse(name, ZONE).index == 0 and failures["left"]:
            failures["left"] -= 1
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure")
        server.asked.append(name)
        return {dnswire.answer(name, dnswire.Code.STORED)}

    monkeypatch.setattr(dns, "lookup", forgetful)
    data = message(600)
    outcome = deliver(data)
    assert outcome.result == TEMPORARY, outcome.reason
    assert (f"acknowledged all {len(dnswire.split(data, ZONE))} chunks 2 "
            "times but did not complete the message") in outcome.reason
    assert len(server.asked) == 2 * len(dnswire.split(data, ZONE))


def test_a_resolver_answering_everything_is_no_acknowledgement(server,
                                                               monkeypatch):
    """A resolver that sinks unknown names to 127.0.0.1 (a filter, a
    captive portal): never taken for the server's answer."""
    monkeypatch.setattr(dns, "lookup", lambda name: {"127.0.0.1"})
    outcome = deliver(message(100))
    assert outcome.result == TEMPORARY
    assert "the answer 127.0.0.1 is no acknowledgement" in outcome.reason


def test_busy_is_temporary_and_refused_is_final(tmp_path, monkeypatch):
    monkeypatch.setattr(delivery, "LIMITS", FAST)
    busy = Server(tmp_path / "busy", max_pending=0)
    monkeypatch.setattr(dns, "lookup", busy.lookup)
    outcome = deliver(message(500))
    assert (outcome.result, busy.stored()) == (TEMPORARY, [])
    assert "busy" in outcome.reason
    refusing = Server(tmp_path / "refusing")
    monkeypatch.setattr(dns, "lookup", refusing.lookup)
    outcome = deliver(b"\x01not encrypted data" * 20)
    assert (outcome.result, refusing.stored()) == (REJECTED, [])


def test_no_openpgp_message_in_the_outbox():
    outcome = dns.deliver(b"hello", {"SUBMIT_ZONE": ZONE})
    assert outcome.result == REJECTED
    assert "not an ASCII-armored OpenPGP message" in outcome.reason


def test_plan_counts_the_queries():
    data = message(1000)
    assert dns.plan({"SUBMIT_ZONE": ZONE}, armored(data)) == (
        f"as {len(dnswire.split(data, ZONE))} DNS queries under {ZONE} "
        "through the system's resolver")
