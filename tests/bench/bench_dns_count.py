#!/usr/bin/python3
"""Benchmark: the DNS receiver's chunks while it counts a 100,000-file
spool.

The gauge counts incoming/ at most once a second, in whichever
connection's thread finds a count due.  Each round here makes a whole
count due (as the receiver's first, or after ingest emptied the spool and
it filled again), starts a new message in one thread, which counts, and
meanwhile THREADS threads each send a chunk of a message already started
every PACE seconds, as PowerDNS's threads between queries.
Printed: how long the count took, how many of the other chunks were
answered during it and the longest any waited; for the receiver as it is
(the count outside the reassembly lock) and for the obvious alternative,
the count under that lock (as before), emulated here by a subclass that
takes the gauge's answer while holding the lock.  Target: no chunk of
another message waits for the count.  Run: make bench.
"""

import os
import shutil
import statistics
import sys
import tempfile
import threading
import time

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(os.path.dirname(TESTS), "src")]

from pyweb_popcon import dnswire  # noqa: E402
from pyweb_popcon.dnswire import Chunk  # noqa: E402
from pyweb_popcon.server.intake import dnsreceive, limits  # noqa: E402
from pyweb_popcon.server.spool import Spool  # noqa: E402

FILES = 100_000
THREADS = 4
PACE = 0.001           # seconds between two chunks of one thread
ROUNDS = 5
ZONE = "d.example"
DATA = b"\xc1" + bytes(range(256)) * 3


class CountUnderTheLock(dnsreceive.Reassembly):
    """The alternative: the gauge asked (and a due count run) while the
    reassembly lock is held."""

    def take(self, chunk):
        with self.lock:
            self.full_now = dnsreceive.Reassembly._full(self)
        return super().take(chunk)

    def _full(self):
        return getattr(self, "full_now", None)


def chunks(message_id):
    payloads = dnswire.split(DATA, ZONE)
    return [Chunk(message_id, i, len(payloads), 0, p)
            for i, p in enumerate(payloads)]


def spool_of(top):
    for d in (Spool.INCOMING, Spool.TMP):
        os.makedirs(os.path.join(top, d))
    incoming = os.path.join(top, Spool.INCOMING)
    for i in range(FILES):
        with open(os.path.join(incoming, f"{i:032x}"), "wb") as f:
            f.write(b"x" * 100)
    return Spool(top)


def round_of(kind, spool, number):
    """(count seconds, chunks answered meanwhile, longest wait)."""
    gauge = limits.Gauge(spool, FILES * 2, 1 << 40, 0)
    r = kind(spool, gauge, 600, 10_000, 64 << 20)
    started = [chunks(f"s{number}t{t}".encode().ljust(10, b"x"))
               for t in range(THREADS)]
    for parts in started:
        r.take(parts[0])
    # A whole count due: nothing of the spool known yet.
    gauge.sizes, gauge.total, gauge.due = {}, 0, 0
    counting = threading.Event()
    waits, stop = [], threading.Event()

    def counter():
        began = time.monotonic()
        r.take(chunks(f"n{number}".encode().ljust(10, b"x"))[0])
        counter.took = time.monotonic() - began
        stop.set()

    def other(parts):
        counting.wait()
        while not stop.is_set():
            began = time.monotonic()
            r.take(parts[0])            # asked again: stored already
            waits.append(time.monotonic() - began)
            time.sleep(PACE)

    threads = [threading.Thread(target=other, args=(p,)) for p in started]
    for t in threads:
        t.start()
    main = threading.Thread(target=counter)
    main.start()
    time.sleep(0.01)                    # it is the one counting
    counting.set()
    main.join()
    for t in threads:
        t.join()
    return counter.took, len(waits), max(waits, default=0.0)


def main():
    top = tempfile.mkdtemp(prefix="ppc-bench-dns-count-")
    try:
        print(f"making a spool of {FILES} files ...", flush=True)
        spool = spool_of(top)
        results = {}
        for name, kind in (("count outside the lock (as it is)",
                            dnsreceive.Reassembly),
                           ("count under the lock (before)",
                            CountUnderTheLock)):
            rounds = [round_of(kind, spool, i) for i in range(ROUNDS)]
            took = statistics.median(r[0] for r in rounds)
            answered = statistics.median(r[1] for r in rounds)
            longest = max(r[2] for r in rounds)
            results[name] = (took, answered, longest)
            print(f"{name}: count {took * 1000:.0f} ms (median of "
                  f"{ROUNDS}); other chunks answered during it: "
                  f"{answered:.0f}; longest wait {longest * 1000:.1f} ms")
        (_, now_answered, now_longest), (_, old_answered, old_longest) = \
            results.values()
        print(f"ratio: {now_answered / max(old_answered, 1):.0f}x the chunks "
              "answered during a count, longest wait "
              f"{old_longest / max(now_longest, 1e-6):.0f}x shorter")
    finally:
        shutil.rmtree(top)


if __name__ == "__main__":
    main()
