"""The receiver under gunicorn, alone and behind the shipped nginx site:
2 KB submissions from 16 concurrent keep-alive clients for 30 s each,
driven by wrk, plain HTTP straight to gunicorn, then HTTPS through nginx
to the same gunicorn, in the same run.  Every submission is fsync'd before
its 202.  Prints requests per second and p99 latency of each, the ratios
against the 1,000/s target and of the front against gunicorn alone (target:
at least 0.5), and checks that every acknowledged (202) submission is on
disk.  The spool is never emptied (its limits raised out of the way), so
the receiver's quota check runs against a spool of tens of thousands of
files; on the spool left, its cost per request is compared with counting
the spool for every request.  Run: make bench.
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

from front import NGINX, Nginx, self_signed  # noqa: E402
from pyweb_popcon.server.intake import limits  # noqa: E402
from pyweb_popcon.server.spool import Spool  # noqa: E402
from server_fixtures import ENV, PYTHON, Server, encryptor  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", 30))
CLIENTS = 16
TARGET = 1000
FRONT_TARGET = 0.5

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


def measure(label, url, script, srv, body):
    """wrk against `url`; one line of figures; (rate, acknowledged ones
    all on disk and whole)."""
    before = set(srv.incoming_files())
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(CLIENTS), "-d", f"{SECONDS}s",
         "--latency", "-s", script, url],
        capture_output=True, text=True, check=True).stdout
    requests = int(number(r"(\d+) requests in", out))
    refused = int(number(r"Non-2xx or 3xx responses: (\d+)", out) or 0)
    errors = number(r"(Socket errors: .*)", out)
    rate = float(number(r"Requests/sec:\s+([\d.]+)", out))
    p99 = ms(number(r"99%\s+(\S+)", out))
    acknowledged = requests - refused
    new = set(srv.incoming_files()) - before
    whole = {os.path.getsize(os.path.join(srv.incoming, n))
             for n in new} <= {len(body)}
    print(f"{label}: {rate:.0f} requests/s, p99 {p99:.1f} ms, {refused} "
          f"refused{', ' + errors if errors else ''}; acknowledged "
          f"{acknowledged}, on disk {len(new)} (complete: {whole})")
    return rate, len(new) >= acknowledged and whole


def quota_check(srv):
    """The quota check per request as the receiver does it (a count at most
    every COUNT_EVERY s, stat()ing only files new to it), against counting
    the spool, a stat() per file, for every request."""
    gauge = limits.Gauge(Spool(srv.spool), 10**9, 10**15, 0)
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
    every = max(limits.COUNT_EVERY, again / limits.COUNT_SHARE)
    print(f"quota check with {gauge.counted[0]} files in incoming/: "
          f"{cached * 1e6:.1f} us per request (each process counts every "
          f"{every:.1f} s: {full * 1e3:.0f} ms the first time, "
          f"{again * 1e3:.0f} ms after), against {full * 1e3:.0f} ms "
          f"counting for every request (ratio {full / cached:.0f}x)")


def main():
    for tool in ("wrk", NGINX):
        if not shutil.which(tool, path=ENV["PATH"]):
            sys.exit(f"bench_receiver needs {tool} (make deps installs it)")
    top = tempfile.mkdtemp(prefix="bench-receiver-")
    try:
        srv = Server(top + "/srv")
        with open(srv.conf, "a") as f:      # the spool is never emptied
            f.write('SPOOL_MAX_FILES="100000000"\nSPOOL_MAX_BYTES="1T"\n')
        body = two_kb_submission()
        with open(top + "/body.asc", "wb") as f:
            f.write(body)
        script = top + "/post.lua"
        with open(script, "w") as f:
            f.write(LUA % (top + "/body.asc"))
        with open(top + "/receiver.log", "wb") as log:
            receiver = subprocess.Popen(
                [PYTHON, "-m", "pyweb_popcon.server", "--config", srv.conf,
                 "serve"], env=ENV, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)
        try:
            subprocess.run(["sleep", "2"])
            print(f"{len(body)}-byte submissions, fsync'd, {CLIENTS} "
                  f"keep-alive clients, {SECONDS} s each (wrk, nginx and "
                  f"gunicorn sharing {len(os.sched_getaffinity(0))} cores)")
            alone, ok_alone = measure(
                "gunicorn alone (HTTP)", f"http://127.0.0.1:{srv.port}/submit",
                script, srv, body)
            with Nginx(top + "/nginx", f"127.0.0.1:{srv.port}", srv.output,
                       *self_signed(top)) as nginx:
                front, ok_front = measure(
                    "through nginx (HTTPS)", nginx.url("/submit"), script,
                    srv, body)
        finally:
            receiver.send_signal(signal.SIGINT)   # gunicorn's quick shutdown
            receiver.wait(30)
        quota_check(srv)
        print(f"ratio: gunicorn alone {alone / TARGET:.2f}x the {TARGET}/s "
              f"target; through nginx {front / TARGET:.2f}x; the front keeps "
              f"{front / alone:.2f} of gunicorn alone (target at least "
              f"{FRONT_TARGET})")
        if not (ok_alone and ok_front):
            sys.exit("FAIL: an acknowledged submission is missing or short")
    finally:
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
