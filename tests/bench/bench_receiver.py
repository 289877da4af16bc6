"""The receiver under gunicorn: 2 KB submissions from 16 concurrent clients
for 30 s on loopback, driven by wrk.  Prints requests per second and p99
latency against the 1,000/s target, and checks that every acknowledged
(202) submission is on disk.  The spool is never emptied, so the quota
check runs against a spool of tens of thousands of files; on the spool
left, its cost per request is compared with counting the spool for every
request.  Run: make bench.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pyweb_popcon.server import spool  # noqa: E402
from server_fixtures import ENV, PYTHON, Server, encryptor  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", 30))
CLIENTS = 16
TARGET = 1000

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/pgp-encrypted"
local f = io.open("%s", "rb")
wrk.body = f:read("*a")
f:close()
"""


def two_kb_submission():
    """A real OpenPGP message of about 2 KB: the receiver never sees more
    than ciphertext, so incompressible bytes stand in for a large report."""
    return encryptor().encrypt(os.urandom(1400))


def number(pattern, text):
    m = re.search(pattern, text)
    return m.group(1) if m else None


def ms(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1, "s": 1e3}[unit]


def quota_check(srv, files):
    """The quota check per request as the receiver does it (a count at most
    every COUNT_EVERY s, stat()ing only files new to it), against counting
    the spool, a stat() per file, for every request."""
    gauge = spool.Gauge(srv.spool, 10**9, 10**15, 0)
    start = time.perf_counter()
    gauge.count()
    full = time.perf_counter() - start
    start = time.perf_counter()
    gauge.count()
    again = time.perf_counter() - start
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < 3:
        gauge.full()
        calls += 1
    cached = (time.perf_counter() - start) / calls
    every = max(spool.COUNT_EVERY, again / spool.COUNT_SHARE)
    print(f"quota check with {files} files in incoming/: {cached * 1e6:.1f} "
          f"us per request (each process counts every {every:.1f} s: "
          f"{full * 1e3:.0f} ms the first time, {again * 1e3:.0f} ms after), "
          f"against {full * 1e3:.0f} ms counting for every request "
          f"(ratio {full / cached:.0f}x)")


def main():
    if not shutil.which("wrk", path=ENV["PATH"]):
        sys.exit("bench_receiver needs Debian's wrk (apt-get install wrk)")
    top = tempfile.mkdtemp(prefix="bench-receiver-")
    try:
        srv = Server(top + "/srv")
        body = two_kb_submission()
        with open(top + "/body.asc", "wb") as f:
            f.write(body)
        with open(top + "/post.lua", "w") as f:
            f.write(LUA % (top + "/body.asc"))
        with open(top + "/receiver.log", "wb") as log:
            receiver = subprocess.Popen(
                [PYTHON, "-m", "pyweb_popcon.server", "--config", srv.conf,
                 "serve"], env=ENV, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)
        try:
            subprocess.run(["sleep", "2"])
            out = subprocess.run(
                ["wrk", "-t", "2", "-c", str(CLIENTS), "-d", f"{SECONDS}s",
                 "--latency", "-s", top + "/post.lua",
                 f"http://127.0.0.1:{srv.port}/submit"],
                capture_output=True, text=True, check=True).stdout
        finally:
            receiver.send_signal(signal.SIGINT)   # gunicorn's quick shutdown
            receiver.wait(30)
        requests = int(number(r"(\d+) requests in", out))
        refused = int(number(r"Non-2xx or 3xx responses: (\d+)", out) or 0)
        rate = float(number(r"Requests/sec:\s+([\d.]+)", out))
        p99 = ms(number(r"99%\s+(\S+)", out))
        acknowledged = requests - refused
        on_disk = srv.incoming_files()
        sizes = {os.path.getsize(os.path.join(srv.incoming, n))
                 for n in on_disk}
        print(f"{len(body)}-byte submissions, {CLIENTS} clients, {SECONDS} s "
              f"(wrk and gunicorn sharing {len(os.sched_getaffinity(0))} "
              "cores)")
        print(f"receiver: {rate:.0f} requests/s, p99 {p99:.1f} ms, "
              f"{refused} refused")
        print(f"ratio: {rate / TARGET:.2f}x the {TARGET}/s target")
        print(f"acknowledged {acknowledged}, on disk {len(on_disk)} "
              f"(complete: {sizes == {len(body)}})")
        quota_check(srv, len(on_disk))
        if len(on_disk) < acknowledged or sizes != {len(body)}:
            sys.exit("FAIL: an acknowledged submission is missing or short")
    finally:
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
