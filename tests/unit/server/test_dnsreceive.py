"""The DNS receiver (PowerDNS's remote backend) on a real spool: the
protocol's replies, reassembly, and the bounds on what a flood can hold."""

import json
import logging
import os
import socket
import stat
import threading

import pytest

from pyweb_popcon import dnswire, report
from pyweb_popcon.dnswire import Chunk, Code
from pyweb_popcon.server.intake import dnsreceive, limits
from pyweb_popcon.server.spool import Spool

ZONE = "d.example"
DATA = b"\xc1" + bytes(range(256)) * 3       # passes for encrypted data


class Clock:
    now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def caplog(caplog):
    """caplog, from INFO up."""
    caplog.set_level(logging.INFO, logger="pyweb_popcon")
    return caplog


@pytest.fixture
def spool_dir(tmp_path):
    for d in (Spool.INCOMING, Spool.TMP):
        os.makedirs(tmp_path / d)
    return str(tmp_path)


def reassembly(spool_dir, clock=None, **bounds):
    spool = Spool(spool_dir)
    gauge = limits.Gauge(spool, bounds.pop("max_files", 1000), 1 << 30, 0)
    given = {"timeout": 600, "max_pending": 100, "max_bytes": 1 << 20}
    given.update(bounds)
    return dnsreceive.Reassembly(spool, gauge, clock=clock or Clock(),
                                 **given)


def chunks(data, message_id=b"m" * 10):
    payloads = dnswire.split(data, ZONE)
    return [Chunk(message_id, i, len(payloads), 0, p)
            for i, p in enumerate(payloads)]


def stored(spool_dir):
    incoming = os.path.join(spool_dir, Spool.INCOMING)
    return {name: open(os.path.join(incoming, name), "rb").read()
            for name in os.listdir(incoming)}


def test_chunks_in_any_order_make_one_spool_file(spool_dir):
    r = reassembly(spool_dir)
    parts = chunks(DATA)
    assert len(parts) > 3
    answers = [r.take(c) for c in reversed(parts)]
    assert answers == [Code.STORED] * (len(parts) - 1) + [Code.COMPLETE]
    files = stored(spool_dir)
    assert list(files.values()) == [DATA]
    mode = os.stat(os.path.join(spool_dir, Spool.INCOMING,
                                *files)).st_mode
    assert stat.S_IMODE(mode) == 0o640
    assert os.listdir(os.path.join(spool_dir, Spool.TMP)) == []
    # Asked again (a lost answer): complete still, and stored once.
    assert r.take(parts[0]) == Code.COMPLETE
    assert len(stored(spool_dir)) == 1


def test_a_repeated_chunk_is_stored_once_a_different_one_refused(spool_dir):
    r = reassembly(spool_dir)
    first = chunks(DATA)[0]
    assert r.take(first) == r.take(first) == Code.STORED
    assert r.held == len(first.payload)
    other = Chunk(first.message_id, 0, first.count, 1, b"x" + first.payload)
    assert r.take(other) == Code.REFUSED
    wrong_count = Chunk(first.message_id, 1, first.count + 1, 0, b"y")
    assert r.take(wrong_count) == Code.REFUSED


def test_what_is_not_encrypted_data_is_refused(spool_dir):
    r = reassembly(spool_dir)
    answers = [r.take(c) for c in chunks(b"\x01plain text, " * 50)]
    assert answers[-1] == Code.REFUSED
    assert stored(spool_dir) == {} and r.pending == {} and r.held == 0


def test_a_message_over_the_size_limit_is_refused(spool_dir):
    r = reassembly(spool_dir, max_bytes=1 << 30)
    size = dnswire.capacity(ZONE)
    count = report.MAX_BYTES // size + 2
    answers = {r.take(Chunk(b"b" * 10, i, count, 0, b"z" * size))
               for i in range(count)}
    assert Code.REFUSED in answers and Code.COMPLETE not in answers
    assert r.held < report.MAX_BYTES + size
    assert stored(spool_dir) == {}


def test_incomplete_messages_are_dropped_after_the_timeout(spool_dir,
                                                           caplog):
    clock = Clock()
    r = reassembly(spool_dir, clock, timeout=60)
    parts = chunks(DATA)
    r.take(parts[0])
    clock.now += 61
    r.take(chunks(DATA, b"n" * 10)[0])
    assert list(r.pending) == [b"n" * 10]
    assert r.held == len(parts[0].payload)
    assert "1 incomplete messages dropped after DNS_TIMEOUT" in caplog.text
    # The rest of the dropped message starts afresh, never completes it.
    assert [r.take(c) for c in parts[1:]][-1] == Code.STORED


def test_a_flood_of_messages_is_bounded(spool_dir, caplog):
    r = reassembly(spool_dir, max_pending=5)
    answers = [r.take(Chunk(i.to_bytes(10, "big"), 0, 2, 0, b"\xc1"))
               for i in range(20)]
    assert answers == [Code.STORED] * 5 + [Code.BUSY] * 15
    assert caplog.text.count("refusing new messages") == 1
    assert len(r.pending) == 5


def test_a_flood_of_bytes_is_bounded(spool_dir):
    r = reassembly(spool_dir, max_bytes=1000)
    answers = [r.take(Chunk(i.to_bytes(10, "big"), 0, 3, 0, b"\xc1" * 300))
               for i in range(5)]
    assert answers == [Code.STORED] * 3 + [Code.BUSY] * 2
    assert r.held == 900 and len(r.pending) == 3


def test_a_full_spool_answers_busy(spool_dir):
    os.makedirs(os.path.join(spool_dir, "x"))
    open(os.path.join(spool_dir, Spool.INCOMING, "waiting"), "wb").close()
    r = reassembly(spool_dir, max_files=1)
    assert r.take(chunks(DATA)[0]) == Code.BUSY


def test_a_message_completed_while_the_spool_is_full_is_stored_later(
        spool_dir):
    """The last chunk arrives while the spool is full: busy, the message
    kept; any chunk asked again once there is room stores it."""
    r = reassembly(spool_dir, max_files=2)
    parts = chunks(DATA)
    for chunk in parts[:-1]:
        assert r.take(chunk) == Code.STORED
    for name in ("a", "b"):
        open(os.path.join(spool_dir, Spool.INCOMING, name), "wb").close()
    r.gauge.count()
    assert r.take(parts[-1]) == Code.BUSY
    assert r.take(parts[0]) == Code.BUSY
    os.unlink(os.path.join(spool_dir, Spool.INCOMING, "a"))
    r.gauge.count()
    assert r.take(parts[0]) == Code.COMPLETE
    assert list(stored(spool_dir).values()).count(DATA) == 1
    assert r.take(parts[-1]) == Code.COMPLETE and not r.pending


def backend(spool_dir):
    return dnsreceive.Backend(dnsreceive.Zone(
        ZONE, ["ns1.example.org"], reassembly(spool_dir)))


def ask(b, method, **parameters):
    line = json.dumps({"method": method, "parameters": parameters})
    reply = b.answer(line.encode() + b"\n")
    assert reply.endswith(b"\n") and reply.count(b"\n") == 1
    return json.loads(reply)["result"]


def test_the_remote_backend_protocol(spool_dir):
    b = backend(spool_dir)
    assert ask(b, "initialize", path="/x") is True
    soa = ask(b, "lookup", qtype="SOA", qname="D.Example.", zone_id=-1)
    assert [r["qtype"] for r in soa] == ["SOA"]
    assert soa[0]["content"].startswith("ns1.example.org. hostmaster.")
    apex = ask(b, "lookup", qtype="ANY", qname="d.example.")
    assert sorted(r["qtype"] for r in apex) == ["NS", "SOA"]
    assert ask(b, "lookup", qtype="A", qname="www.d.example.") == []
    assert ask(b, "getDomainInfo", name="d.example.")["zone"] == "d.example."
    assert ask(b, "getDomainInfo", name="example.org.") is False
    assert ask(b, "getAllDomains", include_disabled=False)[0]["kind"] \
        == "native"
    assert ask(b, "someUnknownMethod") is False
    assert b.answer(b"[1, 2]\n") == b'{"result": false}\n'
    assert b.answer(b"not json\n") == b'{"result": false}\n'


def test_a_chunk_is_answered_and_its_suffixes_exist(spool_dir):
    b = backend(spool_dir)
    (part, *_) = chunks(DATA)
    name = dnswire.query_name(ZONE, part.message_id, 0, part.count, 0,
                              part.payload)
    header = name.split(".", name.count(".") - 2)[-1]
    ent = ask(b, "lookup", qtype="ANY", qname=header.upper() + ".")
    assert [(r["qtype"], r["content"]) for r in ent] == [("ENT", "")]
    assert ask(b, "lookup", qtype="A", qname=header + ".") == []
    # The resolver's address comes with the lookup; it is never read.
    [record] = ask(b, "lookup", qtype="ANY", qname=name.upper() + ".",
                   remote="192.0.2.53", local="127.0.0.1",
                   **{"real-remote": "198.51.100.0/24"})
    assert (record["qtype"], record["ttl"]) == ("A", 0)
    assert dnswire.code(name, record["content"]) == Code.STORED


MALFORMED = [b'{"method": "lookup", "parameters": [1]}',
             b'{"method": "lookup", "parameters": "A"}',
             b'{"method": "lookup", "parameters": 7}',
             b'{"method": "getDomainInfo", "parameters": [{"name": 1}]}',
             b'{"method": ["lookup"], "parameters": {}}']


@pytest.mark.parametrize("line", MALFORMED)
def test_a_malformed_request_costs_one_error_answer(spool_dir, line, caplog):
    """The connection's thread answers it with an error and goes on to
    the next request, a good one."""
    b = backend(spool_dir)
    ours, theirs = socket.socketpair()
    serving = threading.Thread(target=b.serve_connection, args=(theirs,))
    serving.start()
    with ours, ours.makefile("rb") as replies:
        ours.sendall(line + b"\n")
        ours.sendall(b'{"method": "getDomainInfo", "parameters": '
                     b'{"name": "d.example."}}\n')
        ours.settimeout(10)
        assert json.loads(replies.readline()) == {"result": False}
        assert json.loads(replies.readline())["result"]["zone"] \
            == "d.example."
        ours.shutdown(socket.SHUT_WR)
        serving.join(10)
    assert not serving.is_alive()


def test_no_chunk_waits_for_a_count_of_the_spool(spool_dir):
    """A count of the spool (0.2 s and more for 100,000 files) runs in
    one connection's thread; the others' chunks are answered meanwhile,
    with the last count."""
    r = reassembly(spool_dir)
    first, second = chunks(DATA)[:2]
    assert r.take(first) == Code.STORED
    counting, go_on = threading.Event(), threading.Event()
    count = r.gauge.count

    def slow_count():
        counting.set()
        go_on.wait(30)
        count()

    r.gauge.count = slow_count
    r.gauge.due = 0                     # a count is due
    other = threading.Thread(target=r.take,
                             args=(chunks(DATA, b"n" * 10)[0],))
    other.start()
    assert counting.wait(10)
    answered = []
    meanwhile = threading.Thread(target=lambda: answered.append(
        r.take(second)))
    meanwhile.start()
    meanwhile.join(5)
    before_the_count_ended = list(answered)
    go_on.set()
    other.join(10)
    meanwhile.join(10)
    assert before_the_count_ended == [Code.STORED]
    assert len(r.pending) == 2
