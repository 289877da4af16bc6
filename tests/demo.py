#!/usr/bin/python3
"""`make demo`: the whole loop on this one machine, in a scratch directory.

A throw-away server key and the receiver on 127.0.0.1; then 47 days are
replayed, one after the other.  Each day a simulated fleet (tests/fleet.py:
a seeded population of made-up hosts, reporting weekly, joining, leaving
and upgrading) sends that day's reports, encrypted to the server key,
through the receiver; their spool files get that day's receive time, and
the real commands run as at the end of the day: ingest, expire --as-of,
aggregate --as-of (recording the day in the history; the page is written
once, at the end).  On the last day, today, this machine's own report is
collected, encrypted and submitted by the real client too.  The page then
has 40 days of history (the first week only fills the store).

Nothing is written outside DEMO_DIR (default /var/tmp/pyweb-popcon-demo):
the client looks at this machine through a --root whose system paths are
symbolic links to the real ones, and keeps its config and state there.
"""

import concurrent.futures
import datetime
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request

TESTS = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(TESTS), "src")
sys.path[:0] = [TESTS, SRC]

from fleet import Fleet  # noqa: E402
from pyweb_popcon import report  # noqa: E402
from server_fixtures import Encryptor  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": SRC, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
ENV.pop("DO_NOT_TRACK", None)
PYTHON = "/usr/bin/python3"
# What the client reads of the machine; everything else stays in the demo.
SEEN = ("/usr", "/srv", "/opt", "/var/www", "/var/lib/dpkg", "/etc/os-release",
        "/etc/machine-id", "/etc/dpkg")
HOSTS = int(os.environ.get("DEMO_HOSTS", 2500))
DAYS = 47             # the first 7 fill the store; 40 days of history
WARM_UP = 7
NOTE = ("Demonstration: apart from this machine's own report, these numbers "
        "come from a simulated fleet of {hosts:,} made-up hosts (make demo), "
        "not from real machines.")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server(conf, *args, **kw):
    return subprocess.run([PYTHON, "-m", "pyweb_popcon.server", "--config",
                           conf, *args], env=ENV, check=True, **kw)


def quiet(conf, *args):
    """Run a server command for its one-line summary; its log only if it
    fails."""
    done = subprocess.run([PYTHON, "-m", "pyweb_popcon.server", "--config",
                           conf, *args], env=ENV, capture_output=True,
                          text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr}")
    return done.stdout.strip()


def client(root, *args):
    return subprocess.run([PYTHON, "-m", "pyweb_popcon.client", "--root", root,
                           *args], env=ENV, check=True)


def this_machine(top):
    """A --root that shows this machine but keeps pyweb-popcon's files."""
    root = os.path.join(top, "machine")
    for path in SEEN:
        if os.path.exists(path):
            link = root + path
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink(path, link)
    return root


def wait_for(url, receiver):
    for _ in range(100):
        if receiver.poll() is not None:
            raise SystemExit("the receiver did not start")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the receiver does not answer at {url}")


class Poster:
    """POSTs ciphertexts to the receiver, one kept-alive connection per
    thread, as many clients would; the receipts."""

    def __init__(self, listen, threads=8):
        self.host, port = listen.rsplit(":", 1)
        self.port = int(port)
        self.local = threading.local()
        self.pool = concurrent.futures.ThreadPoolExecutor(threads)

    def _post(self, body):
        for attempt in range(3):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection(
                    self.host, self.port, timeout=30)
            try:
                conn.request("POST", "/submit", body, {
                    "Content-Type": "application/pgp-encrypted"})
                response = conn.getresponse()
                reply = json.loads(response.read())
                if response.status != 202:
                    raise SystemExit(f"the receiver said {response.status}: "
                                     f"{reply}")
                return reply["receipt"]
            except (OSError, http.client.HTTPException):
                conn.close()            # kept-alive and closed: again
                self.local.conn = None
        raise SystemExit("the receiver stopped answering")

    def post(self, bodies):
        return list(self.pool.map(self._post, bodies))


def encrypt(enc, plaintexts):
    """All ciphertexts, from two gpg processes at a time."""
    half = len(plaintexts) // 2
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first, second = pool.map(enc.encrypt_many, (plaintexts[:half],
                                                    plaintexts[half:]))
    return first + second


def received(spool, receipts, date, now):
    """Give a day's spool files that day's receive times (ingest reads the
    receive time from the file's mtime), spread over the day."""
    start = datetime.datetime.combine(date, datetime.time(),
                                      datetime.timezone.utc).timestamp()
    latest = min(start + 86_399, now - 60)
    for i, receipt in enumerate(receipts):
        when = int((start + (latest - start) * (i + 1) / (len(receipts) + 1))
                   * 1e9)
        os.utime(os.path.join(spool, "incoming", receipt), ns=(when, when))


def main():
    began = time.monotonic()
    top = os.environ.get("DEMO_DIR", "/var/tmp/pyweb-popcon-demo")
    shutil.rmtree(top, ignore_errors=True)
    os.makedirs(top)
    listen = f"127.0.0.1:{free_port()}"
    conf = os.path.join(top, "server.conf")
    with open(conf, "w") as f:
        f.write(f'SPOOL_DIR="{top}/spool"\nSTATE_DIR="{top}/state"\n'
                f'OUTPUT_DIR="{top}/www"\nLISTEN="{listen}"\n'
                f'PAGE_NOTE="{NOTE.format(hosts=HOSTS)}"\n')
    # As the package's tmpfiles.d does: the receiver refuses submissions
    # while it has no incoming/ to write into.
    for spool_dir in ("incoming", "tmp"):
        os.makedirs(os.path.join(top, "spool", spool_dir))
    root = this_machine(top)
    keyring = os.path.join(root, "server-key.asc")
    print("== a throw-away server key", flush=True)
    fingerprint = server(conf, "keygen", "--export", keyring,
                         capture_output=True, text=True).stdout.split()[-1]
    print(fingerprint)
    os.makedirs(os.path.join(root, "etc"), exist_ok=True)
    with open(os.path.join(root, "etc/pyweb-popcon.conf"), "w") as f:
        f.write(f'PARTICIPATE="yes"\nSUBMIT_URL="http://{listen}/submit"\n'
                f'KEYRING="/server-key.asc"\nKEY_FINGERPRINTS="{fingerprint}"\n'
                f'CONSENTED_FORMAT="{report.FORMAT}"\n')

    today = datetime.datetime.now(datetime.timezone.utc).date()
    first = today - datetime.timedelta(days=DAYS - 1)
    fleet = Fleet(HOSTS, DAYS)
    days = [fleet.day(d, first) for d in range(DAYS)]
    sent = sum(len(reports) for _, reports in days)
    print(f"== SIMULATED: a fleet of {HOSTS:,} made-up hosts (seed 12), "
          f"{sent:,} weekly reports from {first} to {today}, encrypted to "
          "the server key", flush=True)
    with open(keyring, "rb") as f:
        enc = Encryptor(f.read(), fingerprint)
    ciphertexts = iter(encrypt(enc, [r for _, reports in days
                                     for r in reports]))

    print(f"== the receiver on {listen}; each day: the day's reports "
          "through it, then ingest, expire and aggregate as at its end",
          flush=True)
    receiver = subprocess.Popen([PYTHON, "-m", "pyweb_popcon.server",
                                 "--config", conf, "serve"], env=ENV,
                                stdin=subprocess.DEVNULL)
    try:
        wait_for(f"http://{listen}/health", receiver)
        poster = Poster(listen)
        for number, (date, reports) in enumerate(days):
            receipts = poster.post([next(ciphertexts) for _ in reports])
            received(f"{top}/spool", receipts, date, time.time())
            last = number == DAYS - 1
            if last:
                print("== today: this machine's own report, collected, "
                      "encrypted, submitted by the real client", flush=True)
                client(root, "submit", "--force")
            ingested = quiet(conf, "ingest").split(",")[0]
            # Today runs as now; past days as at their end.
            expired = quiet(conf, "expire", *(() if last else (
                "--as-of", date.isoformat()))).split(" and ")[0]
            counted = ""
            if number >= WARM_UP:
                counted = "; " + quiet(conf, "aggregate", *(() if last else (
                    "--as-of", date.isoformat(), "--no-publish"))
                    ).split(" on ")[0] + " counted"
            print(f"   {date}: {len(reports)} reports; {ingested}, "
                  f"{expired} expired{counted}", flush=True)
        print("== the headline table", flush=True)
        server(conf, "stats")
    finally:
        receiver.terminate()
        receiver.wait(timeout=30)
    # gpg may have started an agent for the fleet's encryption home.
    subprocess.run(["gpgconf", "--homedir", enc.home, "--kill", "all"],
                   check=False)
    with open(f"{top}/www/history.json") as f:
        history = json.load(f)["days"]
    page = f"{top}/www/index.html"
    print(f"\nHistory: {len(history)} days, {history[0]['generated']} to "
          f"{history[-1]['generated']}")
    print(f"The published page: {page}\n  file://{page}")
    print(f"(make demo took {time.monotonic() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
